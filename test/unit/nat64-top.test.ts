import { describe, expect, it } from 'vitest';
import { emptyRecord } from '../../decoders/record.js';
import { Nat64Prefixes } from '../../src/enrich/nat64.js';
import { Nat64TopAggregator, Nat64TopSketches, nat64Ipv4 } from '../../src/enrich/nat64-top.js';
import { ipv4Number, ipv4Text, SpaceSaving } from '../../src/enrich/space-saving.js';
import type { Nat64TopRow } from '../../src/store/nat64-top.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';

/** A deterministic pseudo-random stream (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

/** Every invariant of Space-Saving against the true counts. */
function checkBounds(s: SpaceSaving, truth: Map<number, number>): void {
  const entries = s.entries();
  const listed = new Set(entries.map((e) => e.key));
  for (const e of entries) {
    const t = truth.get(e.key) ?? 0;
    expect(e.bytes).toBeGreaterThanOrEqual(t - 1e-6);
    expect(e.bytes - e.errorBytes).toBeLessThanOrEqual(t + 1e-6);
  }
  for (const [k, t] of truth) if (!listed.has(k)) expect(t).toBeLessThanOrEqual(s.min + 1e-6);
}

describe('SpaceSaving', () => {
  it('is exact while the distinct keys fit', () => {
    const s = new SpaceSaving(8);
    const truth = new Map<number, number>();
    const r = rng(1);
    for (let i = 0; i < 5000; i++) {
      const k = Math.floor(r() * 8) * 0x01010101;
      const w = 1 + Math.floor(r() * 1500);
      s.add(k >>> 0, w, 1);
      truth.set(k >>> 0, (truth.get(k >>> 0) ?? 0) + w);
    }
    expect(s.size).toBe(8);
    for (const e of s.entries()) {
      expect(e.bytes).toBe(truth.get(e.key));
      expect(e.errorBytes).toBe(0);
    }
    const e = s.entries();
    for (let i = 1; i < e.length; i++) expect(e[i - 1]!.bytes).toBeGreaterThanOrEqual(e[i]!.bytes);
  });

  it('keeps the heavy hitters under an adversarial stream of many light keys', () => {
    const k = 20;
    const s = new SpaceSaving(k);
    const truth = new Map<number, number>();
    const heavy = [ipv4Number('192.0.2.33')!, ipv4Number('198.51.100.7')!, ipv4Number('203.0.113.250')!];
    const add = (key: number, w: number): void => {
      s.add(key, w, 1);
      truth.set(key, (truth.get(key) ?? 0) + w);
    };
    // Light keys, each new (the worst case: every one evicts the minimum), heavy ones
    // interleaved rarely and first seen late.
    let light = 0x0a000000;
    for (let i = 0; i < 200_000; i++) {
      add(light++, 10);
      if (i > 100_000 && i % 50 === 0) for (const h of heavy) add(h, 400);
    }
    checkBounds(s, truth);
    const total = [...truth.values()].reduce((a, b) => a + b, 0);
    expect(s.total).toBe(total);
    // Each heavy key has ~ 2000 * 400 = 800 kB, more than total / k = 140 kB: always listed.
    const listed = new Map(s.entries().map((e) => [e.key, e]));
    for (const h of heavy) {
      expect(truth.get(h)!).toBeGreaterThan(total / k);
      expect(listed.has(h)).toBe(true);
    }
    expect(s.min).toBeLessThanOrEqual(total / k);
    // The top 3 by the sketch are the heavy keys.
    expect(
      s
        .entries()
        .slice(0, 3)
        .map((e) => e.key)
        .sort(),
    ).toEqual([...heavy].sort());
  });

  it('holds its bounds on a random skewed stream', () => {
    const s = new SpaceSaving(16);
    const truth = new Map<number, number>();
    const r = rng(7);
    for (let i = 0; i < 50_000; i++) {
      const key = Math.floor(Math.pow(r(), 3) * 500);
      const w = 1 + Math.floor(r() * 100);
      s.add(key, w, 1);
      truth.set(key, (truth.get(key) ?? 0) + w);
    }
    checkBounds(s, truth);
  });

  it('merges: exact when neither side was full, bounds kept when both were', () => {
    const a = new SpaceSaving(10);
    const b = new SpaceSaving(10);
    a.add(1, 100, 1);
    a.add(2, 50, 2);
    b.add(2, 30, 3);
    b.add(3, 70, 4);
    a.merge(b.pack(), b.full);
    expect(a.entries()).toEqual([
      { key: 1, bytes: 100, packets: 1, errorBytes: 0 },
      { key: 2, bytes: 80, packets: 5, errorBytes: 0 },
      { key: 3, bytes: 70, packets: 4, errorBytes: 0 },
    ]);

    // Four partial sketches of one skewed stream, merged one by one (as the main thread does).
    const r = rng(3);
    const truth = new Map<number, number>();
    const main = new SpaceSaving(12);
    for (let part = 0; part < 4; part++) {
      const p = new SpaceSaving(12);
      for (let i = 0; i < 20_000; i++) {
        const key = Math.floor(Math.pow(r(), 4) * 1000);
        const w = 1 + Math.floor(r() * 64);
        p.add(key, w, 1);
        truth.set(key, (truth.get(key) ?? 0) + w);
      }
      expect(p.full).toBe(true);
      main.merge(p.pack(), p.full);
      checkBounds(main, truth);
    }
    // The heaviest key is the first.
    const heaviest = [...truth].sort((x, y) => y[1] - x[1])[0]![0];
    expect(main.entries()[0]!.key).toBe(heaviest);
  });

  it('formats and parses IPv4 numbers', () => {
    expect(ipv4Text(0xc0000221)).toBe('192.0.2.33');
    expect(ipv4Number('192.0.2.33')).toBe(0xc0000221);
    expect(ipv4Number('255.255.255.255')).toBe(0xffffffff);
    expect(ipv4Number('256.0.0.1')).toBeUndefined();
  });
});

/** A NAT64 record: 2001:db8::1 -> 64:ff9b::<ipv4> (or reversed). */
function record(ipv4: number, bytes: number, reverse = false, samplingRate = 1) {
  const rec = emptyRecord('ipfix', '192.0.2.1', 0);
  const b = new Uint8Array(32);
  const host = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  const nat = Uint8Array.from([
    0,
    0x64,
    0xff,
    0x9b,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    ipv4 >>> 24,
    (ipv4 >>> 16) & 255,
    (ipv4 >>> 8) & 255,
    ipv4 & 255,
  ]);
  b.set(reverse ? nat : host, 0);
  b.set(reverse ? host : nat, 16);
  rec.addrBytes = b;
  rec.addrLen = 16;
  rec.srcAddrAt = 0;
  rec.dstAddrAt = 16;
  rec.bytes = bytes;
  rec.packets = 1;
  rec.samplingRate = samplingRate;
  return rec;
}

describe('NAT64 top lists', () => {
  const prefixes = new Nat64Prefixes(['64:ff9b::/96']);
  const ip = ipv4Number('192.0.2.33')!;

  it('takes the NAT64 side: the destination, else the source', () => {
    expect(nat64Ipv4(record(ip, 1), prefixes)).toBe(ip);
    expect(nat64Ipv4(record(ip, 1, true), prefixes)).toBe(ip);
  });

  it('buckets by receive time, scales by sampling, keeps at most a few buckets', () => {
    const s = new Nat64TopSketches(4, 60, 2);
    s.addRecord(record(ip, 100, false, 10), 60_000, prefixes);
    s.addRecord(record(ip, 5, false, 1), 120_000, prefixes);
    s.addRecord(record(ip, 7, false, 1), 0, prefixes); // older than both kept buckets: dropped
    expect(s.dropped).toBe(1);
    s.addRecord(record(ip, 1, false, 1), 180_000, prefixes); // evicts bucket 1
    expect(s.evicted).toBe(1);
    const parts = s.take();
    expect(parts.map((p) => p.index).sort()).toEqual([2, 3]);
    expect(s.take()).toEqual([]);
  });

  it('writes due buckets, rewrites on late updates, continues after a restart', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    let now = 0;
    const config = { capacity: 3, bucketSeconds: 60, graceSeconds: 10, lateWindowSeconds: 120, tickSeconds: 1 };
    const top = new Nat64TopAggregator(config, { now: () => now, store });
    const worker = new Nat64TopSketches(3, 60);
    worker.addRecord(record(ip, 1000), 5_000, prefixes);
    worker.addRecord(record(ip + 1, 500), 6_000, prefixes);
    top.mergeParts(worker.take());
    top.addRecord(record(ip, 10), 7_000, prefixes);
    now = 65_000;
    await top.tick(now);
    expect((await store.readNat64TopRows(0)).length).toBe(0);
    now = 71_000;
    await top.tick(now);
    const rows = await store.readNat64TopRows(0);
    expect(rows.map((r: Nat64TopRow) => [r.rank, r.address, r.bytes])).toEqual([
      [1, '192.0.2.33', 1010],
      [2, '192.0.2.34', 500],
    ]);
    // Late, inside the late window: rewritten.
    top.addRecord(record(ip + 1, 1000), 59_000, prefixes);
    now = 72_000;
    await top.tick(now);
    expect((await store.queryNat64Top({ fromMs: 0, toMs: 60_000, limit: 10 })).destinations.map((d) => [d.address, d.bytes])).toEqual([
      ['192.0.2.34', 1500],
      ['192.0.2.33', 1010],
    ]);
    // A restart within the bucket's late window continues from the store.
    const again = new Nat64TopAggregator(config, { now: () => now, store });
    expect(again.seed(await store.readNat64TopRows(0), now)).toBe(2);
    again.addRecord(record(ip, 90), 30_000, prefixes);
    await again.stop();
    const q = await store.queryNat64Top({ fromMs: 0, toMs: 60_000, limit: 1 });
    expect(q).toEqual({
      destinations: [{ address: '192.0.2.34', bytes: 1500, packets: 2, errorBytes: 0, buckets: 1 }],
      omitted: 1,
      buckets: 1,
    });
    const all = await store.queryNat64Top({ fromMs: 0, toMs: 60_000, limit: 10 });
    expect(all.destinations.map((d) => [d.address, d.bytes, d.packets])).toEqual([
      ['192.0.2.34', 1500, 2],
      ['192.0.2.33', 1100, 3],
    ]);
    // Past the late window: closed, later data dropped.
    now = 300_000;
    await again.tick(now);
    again.addRecord(record(ip, 1), 1_000, prefixes);
    expect(again.stats.tooLate).toBe(1);
    await store.close();
  });
});
