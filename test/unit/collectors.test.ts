import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { ExporterAllowList, normalizeAddress } from '../../collectors/allowlist.js';
import { BoundedQueue, type ReceivedDatagram } from '../../collectors/queue.js';
import { parseHostPort, replayDatagrams } from '../../collectors/replay.js';
import type { CapturedDatagram } from '../../collectors/pcap.js';
import { UdpListener } from '../../collectors/udp.js';

function dgram(srcAddr: string, n: number): ReceivedDatagram {
  return { payload: Uint8Array.of(n), srcAddr, srcPort: 1, localPort: 4739, receivedMs: n };
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('BoundedQueue', () => {
  it('is FIFO, drops when full and counts drops per exporter', () => {
    const q = new BoundedQueue<ReceivedDatagram>(3);
    expect([q.push(dgram('a', 1)), q.push(dgram('b', 2)), q.push(dgram('a', 3)), q.push(dgram('a', 4)), q.push(dgram('c', 5))]).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(q.dropped).toBe(2);
    expect(Object.fromEntries(q.dropsByExporter)).toEqual({ a: 1, c: 1 });
    expect(q.shift()?.receivedMs).toBe(1);
    expect(q.push(dgram('b', 6))).toBe(true);
    expect([q.shift()?.receivedMs, q.shift()?.receivedMs, q.shift()?.receivedMs, q.shift()]).toEqual([2, 3, 6, undefined]);
    expect(q.length).toBe(0);
  });

  it('rejects a non-positive capacity', () => {
    expect(() => new BoundedQueue(0)).toThrow(RangeError);
  });
});

describe('ExporterAllowList', () => {
  it('matches IPv4 and IPv6 prefixes and allows all when empty', () => {
    const l = new ExporterAllowList(['192.0.2.0/24', '2001:db8::/32', '198.51.100.7']);
    expect(l.allows('192.0.2.200')).toBe(true);
    expect(l.allows('192.0.3.1')).toBe(false);
    expect(l.allows('2001:db8:1::5')).toBe(true);
    expect(l.allows('2001:db9::5')).toBe(false);
    expect(l.allows('198.51.100.7')).toBe(true);
    expect(l.allows('198.51.100.8')).toBe(false);
    expect(new ExporterAllowList([]).allows('203.0.113.1')).toBe(true);
  });

  it('rejects malformed entries and folds IPv4-mapped addresses', () => {
    expect(() => new ExporterAllowList(['10.0.0.0/33'])).toThrow(/prefix length/);
    expect(() => new ExporterAllowList(['router1'])).toThrow(/not an IPv4 or IPv6/);
    expect(normalizeAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeAddress('2001:db8::1')).toBe('2001:db8::1');
  });
});

describe('UdpListener and replay over loopback', () => {
  it('receives real datagrams, tags them, denies by allow-list and counts queue drops', async () => {
    const port = await freeUdpPort();
    const q = new BoundedQueue<ReceivedDatagram>(2);
    const listener = new UdpListener(
      { protocol: 'ipfix', port, bind: '127.0.0.1', receiveBufferBytes: 0 },
      (d, transient) => q.push(transient ? { ...d, payload: d.payload.slice() } : { ...d }),
      new ExporterAllowList([]),
      () => 42,
    );
    await listener.start();
    const tx = createSocket('udp4');
    for (let i = 0; i < 3; i++) await new Promise<void>((r) => tx.send(Uint8Array.of(0, 10, i), port, '127.0.0.1', () => r()));
    await until(() => listener.stats.datagrams === 3);
    expect(listener.stats).toEqual({ datagrams: 3, bytes: 9, deniedByAllowList: 0, queueDrops: 1, truncated: 0 });
    const first = q.shift()!;
    expect([...first.payload]).toEqual([0, 10, 0]);
    expect(first).toMatchObject({ srcAddr: '127.0.0.1', srcPort: tx.address().port, localPort: port, receivedMs: 42 });
    tx.close();
    await listener.stop();

    const denyPort = await freeUdpPort();
    const denying = new UdpListener(
      { protocol: 'sflow', port: denyPort, bind: '127.0.0.1', receiveBufferBytes: 1 << 20 },
      (d, transient) => q.push(transient ? { ...d, payload: d.payload.slice() } : { ...d }),
      new ExporterAllowList(['10.0.0.0/8']),
    );
    await denying.start();
    const tx2 = createSocket('udp4');
    await new Promise<void>((r) => tx2.send(Uint8Array.of(1), denyPort, '127.0.0.1', () => r()));
    await until(() => denying.stats.datagrams === 1);
    expect(denying.stats.deniedByAllowList).toBe(1);
    tx2.close();
    await denying.stop();
  });

  it('replay keeps one socket per original source and sends every payload in order', async () => {
    const port = await freeUdpPort();
    const q = new BoundedQueue<ReceivedDatagram>(100);
    const listener = new UdpListener(
      { protocol: 'ipfix', port, bind: '127.0.0.1', receiveBufferBytes: 0 },
      (d, transient) => q.push(transient ? { ...d, payload: d.payload.slice() } : { ...d }),
      new ExporterAllowList([]),
    );
    await listener.start();
    const mk = (frame: number, srcPort: number): CapturedDatagram => ({
      frame,
      timeMs: 1000 + frame,
      srcAddr: '127.0.0.1',
      srcPort,
      dstAddr: '127.0.0.1',
      dstPort: 4739,
      payload: Uint8Array.of(frame),
    });
    const r = await replayDatagrams([mk(1, 5000), mk(2, 5001), mk(3, 5000), mk(4, 5002)], {
      host: '127.0.0.1',
      port,
      speed: 0,
      rate: undefined,
      onlyDstPort: 0,
    });
    expect(r).toEqual({ sent: 4, sockets: 3, bytes: 4 });
    await until(() => q.length === 4);
    const got = [q.shift()!, q.shift()!, q.shift()!, q.shift()!];
    expect(got.map((d) => d.payload[0])).toEqual([1, 2, 3, 4]);
    expect(got[0]!.srcPort).toBe(got[2]!.srcPort);
    expect(new Set(got.map((d) => d.srcPort)).size).toBe(3);
    await listener.stop();
  });

  it('parses --to targets', () => {
    expect(parseHostPort('127.0.0.1:4739')).toEqual({ host: '127.0.0.1', port: 4739 });
    expect(parseHostPort('[::1]:6343')).toEqual({ host: '::1', port: 6343 });
    expect(() => parseHostPort('localhost')).toThrow(/HOST:PORT/);
    expect(() => parseHostPort('h:70000')).toThrow(/HOST:PORT/);
  });
});
