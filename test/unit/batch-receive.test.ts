import { spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { SocketAddress } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AddressCache,
  createDatagramReceiver,
  formatAddress16,
  nativeAddonPath,
  nativeReceiveStatus,
  parseAddress16,
  type DatagramReceiver,
  type DatagramReceiverConfig,
  type DatagramReceiverOptions,
  type ReceivedBatch,
} from '../../collectors/batch-receive.js';

const status = nativeReceiveStatus();
const native = status.available;
if (!native) console.warn(`batch-receive: native recvmmsg receiver not available, its tests are skipped: ${status.reason}`);

/** Receivers opened by a test; stopped afterwards even when the test failed. */
const open: DatagramReceiver[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.stop();
  for (const s of sockets.splice(0)) s.close();
});

function receiver(cfg: Partial<DatagramReceiverConfig>, opts: DatagramReceiverOptions): DatagramReceiver {
  const r = createDatagramReceiver({ bind: '127.0.0.1', port: 0, receiveBufferBytes: 8 << 20, ...cfg }, opts);
  open.push(r);
  return r;
}

async function sender(type: 'udp4' | 'udp6', address: string): Promise<Socket> {
  const s = createSocket(type);
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  return s;
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** 1,000 payloads: zero-length, the IPv4 maximum (65,507) and 1..2,000 octets from a fixed LCG. */
function payloads(n = 1000): Uint8Array[] {
  let seed = 12345;
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const len = i === 0 ? 0 : i === 1 ? 65_507 : i === n - 1 ? 0 : 1 + (seed % 2000);
    const p = new Uint8Array(len);
    for (let j = 0; j < len; j++) p[j] = (i * 7 + j * 13) & 255;
    out.push(p);
  }
  return out;
}

/** Sends in chunks of 50 with an event-loop turn between, so the receiver (same loop) keeps up. */
async function sendAll(s: Socket, to: string, port: number, ps: readonly Uint8Array[]): Promise<void> {
  for (let i = 0; i < ps.length; i += 50) {
    const chunk = ps.slice(i, i + 50);
    await Promise.all(chunk.map((p) => new Promise<void>((res, rej) => s.send(p, port, to, (e) => (e ? rej(e) : res())))));
    await new Promise((r) => setImmediate(r));
  }
}

interface Got {
  payload: Uint8Array;
  port: number;
  addr: string;
  raw: Uint8Array;
  truncated: number;
}

/** A consumer that copies what it keeps, as the batch is valid only during the callback. */
function collector(cache = new AddressCache()): { got: Got[]; batches: number; onBatch: (b: ReceivedBatch) => void } {
  const state = {
    got: [] as Got[],
    batches: 0,
    onBatch: (b: ReceivedBatch) => {
      state.batches++;
      for (let i = 0; i < b.count; i++) {
        const off = b.offsets[i]!;
        state.got.push({
          payload: b.data.slice(off, off + b.lengths[i]!),
          port: b.ports[i]!,
          addr: cache.get(b.addrs, i),
          raw: b.addrs.slice(i * 16, i * 16 + 16),
          truncated: b.truncated[i]!,
        });
      }
    },
  };
  return state;
}

const MAPPED_LOOPBACK = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1);
const V6_LOOPBACK = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);

const KINDS: { name: string; opts: DatagramReceiverOptions; kind: 'recvmmsg' | 'dgram'; skip: boolean }[] = [
  { name: 'native recvmmsg', opts: { native: 'auto' }, kind: 'recvmmsg', skip: !native },
  { name: 'dgram, one per batch', opts: { native: 'off', dgramDelivery: 'single' }, kind: 'dgram', skip: false },
  { name: 'dgram, gathered per turn', opts: { native: 'off', dgramDelivery: 'gather' }, kind: 'dgram', skip: false },
];

const PATHS = [
  { bind: '127.0.0.1', from: 'udp4' as const, src: '127.0.0.1', to: '127.0.0.1', text: '127.0.0.1', raw: MAPPED_LOOPBACK },
  { bind: '::', from: 'udp4' as const, src: '127.0.0.1', to: '127.0.0.1', text: '127.0.0.1', raw: MAPPED_LOOPBACK },
  { bind: '::1', from: 'udp6' as const, src: '::1', to: '::1', text: '::1', raw: V6_LOOPBACK },
];

describe('native addon availability', () => {
  it('loads (required under CI=true, unless SCITAGS_NATIVE_RECV=off asks for the fallback)', () => {
    if (process.env['CI'] === 'true' && process.env['SCITAGS_NATIVE_RECV'] !== 'off')
      expect(status, `native receive must build in CI: ${status.reason}`).toEqual({ available: true });
    else if (!native) console.warn('batch-receive: not CI, so the missing addon is only a notice');
  });

  it('SCITAGS_NATIVE_RECV=off and native: off select node:dgram', () => {
    const saved = process.env['SCITAGS_NATIVE_RECV'];
    process.env['SCITAGS_NATIVE_RECV'] = 'off';
    try {
      expect(nativeReceiveStatus()).toEqual({ available: false, reason: 'disabled by SCITAGS_NATIVE_RECV=off' });
      expect(receiver({}, {}).kind).toBe('dgram');
    } finally {
      if (saved === undefined) delete process.env['SCITAGS_NATIVE_RECV'];
      else process.env['SCITAGS_NATIVE_RECV'] = saved;
    }
    expect(receiver({}, { native: 'off' }).kind).toBe('dgram');
    if (native) expect(receiver({}, {}).kind).toBe('recvmmsg');
  });
});

for (const k of KINDS) {
  describe.skipIf(k.skip)(`${k.name} receiver`, () => {
    for (const path of PATHS) {
      it(`receives 1,000 datagrams exactly, bound to ${path.bind}, from ${path.src}`, async () => {
        const r = receiver({ bind: path.bind }, k.opts);
        expect(r.kind).toBe(k.kind);
        const c = collector();
        await r.start(c.onBatch);
        expect(r.port).toBeGreaterThan(0);
        expect(r.grantedReceiveBufferBytes).toBeGreaterThan(0);
        const s = await sender(path.from, path.src);
        const ps = payloads();
        await sendAll(s, path.to, r.port, ps);
        await until(() => c.got.length >= ps.length);
        expect(c.got.length).toBe(ps.length);
        const srcPort = s.address().port;
        for (let i = 0; i < ps.length; i++) {
          const g = c.got[i]!;
          expect(g.payload.length, `datagram ${i} length`).toBe(ps[i]!.length);
          expect(Buffer.from(g.payload).equals(ps[i]!), `datagram ${i} payload`).toBe(true);
          expect(g.port).toBe(srcPort);
          expect(g.addr).toBe(path.text);
          expect(g.raw).toEqual(path.raw);
          expect(g.truncated).toBe(0);
        }
        const st = r.stats();
        expect(st.datagrams).toBe(ps.length);
        if (k.kind === 'recvmmsg') {
          // Batching: fewer callbacks than datagrams (each chunk of 50 arrives together).
          expect(c.batches).toBeLessThan(ps.length / 5);
          expect(st.batches).toBe(c.batches);
          expect(st.kernelDrops).toBeUndefined();
        }
        await r.stop();
        await r.stop();
      });
    }

    it('stop() twice, and before start(), is safe', async () => {
      const idle = receiver({}, k.opts);
      await idle.stop();
      await idle.stop();
      const r = receiver({}, k.opts);
      await r.start(() => {});
      await r.stop();
      await r.stop();
      await expect(r.start(() => {})).rejects.toThrow(/already started/);
    });

    it('rejects start() on a port in use, naming the port', async () => {
      const busy = await sender('udp4', '127.0.0.1');
      const port = busy.address().port;
      const r = receiver({ port }, k.opts);
      const err = (await r.start(() => {}).catch((e: unknown) => e)) as Error & { code?: string };
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toContain(String(port));
      expect(err.code).toBe('EADDRINUSE');
      await r.stop();
    });

    // node:dgram has reusePort from Node 22.12 (Node 20 ignores the option).
    const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
    const reusePortWorks = k.kind === 'recvmmsg' || major > 22 || (major === 22 && minor >= 12);
    it.skipIf(!reusePortWorks)('shares a port with SO_REUSEPORT', async () => {
      const a = receiver({ reusePort: true }, k.opts);
      await a.start(() => {});
      const b = receiver({ reusePort: true, port: a.port }, k.opts);
      await b.start(() => {});
      expect(b.port).toBe(a.port);
    });

    it('can stop from inside the callback', async () => {
      const r = receiver({}, k.opts);
      let calls = 0;
      await r.start(() => {
        calls++;
        void r.stop();
      });
      const s = await sender('udp4', '127.0.0.1');
      await sendAll(s, '127.0.0.1', r.port, payloads(100).slice(2));
      await until(() => calls > 0);
      await new Promise((res) => setTimeout(res, 50));
      expect(calls).toBe(1);
    });
  });
}

describe.skipIf(!native)('native recvmmsg specifics', () => {
  it('cuts and flags a datagram longer than its slot (MSG_TRUNC)', async () => {
    const r = receiver({ slotBytes: 1024, batchSize: 4 }, {});
    const c = collector();
    await r.start(c.onBatch);
    const s = await sender('udp4', '127.0.0.1');
    const big = new Uint8Array(3000).map((_, i) => i & 255);
    await sendAll(s, '127.0.0.1', r.port, [big, Uint8Array.of(1, 2, 3)]);
    await until(() => c.got.length >= 2);
    expect(c.got[0]!.truncated).toBe(1);
    expect(Buffer.from(c.got[0]!.payload).equals(big.subarray(0, 1024))).toBe(true);
    expect(c.got[1]).toMatchObject({ truncated: 0, payload: Uint8Array.of(1, 2, 3) });
    expect(r.stats().truncated).toBe(1);
  });

  /** Runs an ES module in a fresh Node with the addon path; returns its JSON on stdout. */
  function child(code: string, nodeArgs: string[] = []): unknown {
    const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', code], {
      env: { ...process.env, ADDON: nativeAddonPath() },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.stderr.replace(/.*ExperimentalWarning.*\n?/g, ''), 'child stderr').toBe('');
    expect(r.status, `child exit (${r.stderr})`).toBe(0);
    return JSON.parse(r.stdout);
  }

  const PRELUDE = `
    import { createRequire } from 'node:module';
    import { createSocket } from 'node:dgram';
    const { Receiver } = createRequire(import.meta.url)(process.env.ADDON);
    const N = 8;
    const make = (port = 0) => new Receiver('127.0.0.1', port, 0, false, N, 2048, new Uint8Array(N * 2048),
      new Uint32Array(N), new Uint32Array(N), new Uint16Array(N), new Uint8Array(N * 16), new Uint8Array(N));
    const tick = () => new Promise((r) => setTimeout(r, 20));
    const send = async (port, n) => {
      const s = createSocket('udp4');
      for (let i = 0; i < n; i++) await new Promise((r) => s.send(Uint8Array.of(i), port, '127.0.0.1', r));
      s.close();
    };
  `;

  it('a throwing callback becomes uncaughtException and receiving goes on', () => {
    const out = child(`${PRELUDE}
      let caught = 0, batches = 0, datagrams = 0;
      process.on('uncaughtException', (e) => { if (e.message === 'boom') caught++; else throw e; });
      const r = make();
      r.start((n) => { batches++; datagrams += n; if (batches === 1) throw new Error('boom'); });
      await send(r.port, 3); await tick();
      await send(r.port, 3); await tick();
      const st = r.stats();
      r.close(); r.close();
      console.log(JSON.stringify({ caught, datagrams, callbackErrors: st.callbackErrors }));
    `) as { caught: number; datagrams: number; callbackErrors: number };
    expect(out).toEqual({ caught: 1, datagrams: 6, callbackErrors: 1 });
  });

  it('stops instead of writing into a detached batch buffer', () => {
    const out = child(`${PRELUDE}
      const errors = [];
      process.on('uncaughtException', (e) => errors.push(e.message));
      const data = new Uint8Array(N * 2048);
      const r = new Receiver('127.0.0.1', 0, 0, false, N, 2048, data,
        new Uint32Array(N), new Uint32Array(N), new Uint16Array(N), new Uint8Array(N * 16), new Uint8Array(N));
      let got = 0;
      r.start((n) => { got += n; });
      await send(r.port, 1); await tick();
      structuredClone(data.buffer, { transfer: [data.buffer] }); // detaches it
      await send(r.port, 1); await tick();
      await send(r.port, 1); await tick();
      r.close();
      console.log(JSON.stringify({ got, errors }));
    `) as { got: number; errors: string[] };
    expect(out).toEqual({ got: 1, errors: ['scitags_recv: a batch buffer was detached; receiver closed'] });
  });

  it('survives garbage collection of open, started and closed receivers', () => {
    const out = child(
      `${PRELUDE}
      for (let i = 0; i < 200; i++) { const r = make(); if (i % 2) { r.start(() => {}); r.close(); } }
      globalThis.gc(); await tick(); globalThis.gc(); await tick();
      // A started receiver that nobody references keeps running (like a dgram socket) until closed.
      let got = 0; let port;
      (() => { const r = make(); port = r.port; r.start((n) => { got += n; if (got >= 3) r.close(); }); })();
      globalThis.gc(); await tick();
      await send(port, 3); await tick();
      globalThis.gc(); await tick();
      console.log(JSON.stringify({ got }));
    `,
      ['--expose-gc'],
    );
    expect(out).toEqual({ got: 3 });
  });

  it('loads in worker threads, and a terminated worker releases its socket', () => {
    const out = child(`${PRELUDE}
      import { Worker } from 'node:worker_threads';
      const workerCode = \`
        const { parentPort } = require('node:worker_threads');
        const { Receiver } = require(process.env.ADDON);
        const N = 8;
        const r = new Receiver('127.0.0.1', 0, 0, false, N, 2048, new Uint8Array(N * 2048),
          new Uint32Array(N), new Uint32Array(N), new Uint16Array(N), new Uint8Array(N * 16), new Uint8Array(N));
        let got = 0;
        r.start((n) => { got += n; parentPort.postMessage({ got }); });
        parentPort.postMessage({ port: r.port });
      \`;
      const results = [];
      for (let round = 0; round < 3; round++) {
        const w = new Worker(workerCode, { eval: true, execArgv: [] }); // CommonJS, not --input-type
        const port = await new Promise((res) => w.once('message', (m) => res(m.port)));
        const got = new Promise((res) => w.on('message', (m) => { if (m.got >= 2) res(m.got); }));
        await send(port, 2);
        results.push(await got);
        await w.terminate(); // never closed by the worker: the cleanup hook must do it
        const again = make(port); // the port is free again
        again.close();
      }
      console.log(JSON.stringify({ results }));
    `);
    expect(out).toEqual({ results: [2, 2, 2] });
  });
});

describe('AddressCache and 16-octet addresses', () => {
  function bytes(text: string): Uint8Array {
    const b = new Uint8Array(16);
    expect(parseAddress16(text, b)).toBe(true);
    return b;
  }

  it("gives '127.0.0.1' for IPv4-mapped and '::1' for IPv6 loopback, from the cache on a hit", () => {
    const cache = new AddressCache();
    const addrs = new Uint8Array(48);
    addrs.set(MAPPED_LOOPBACK, 0);
    addrs.set(V6_LOOPBACK, 16);
    addrs.set(MAPPED_LOOPBACK, 32);
    const a = cache.get(addrs, 0);
    const b = cache.get(addrs, 1);
    expect([a, b]).toEqual(['127.0.0.1', '::1']);
    expect(cache.misses).toBe(2);
    const again = cache.get(addrs, 2);
    expect(again).toBe(a);
    expect(cache.get(addrs, 1)).toBe(b);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 2 });
  });

  it('formats as node:net prints (libuv inet_ntop6), IPv4-mapped folded to IPv4', () => {
    const samples = [
      '::',
      '::1',
      '::2',
      '1::',
      '2001:db8::1',
      '2001:db8:0:0:1:0:0:1',
      '1:0:0:2:0:0:3:4',
      '0:0:1::',
      'fe80::1:2',
      '::1.2.3.4',
      '::0.1.2.3',
      '::ffff:0:1.2.3.4',
      '64:ff9b::192.0.2.33',
      'abcd:ef01:2345:6789:abcd:ef01:2345:6789',
    ];
    let seed = 7;
    const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    for (let i = 0; i < 2000; i++) {
      // Random groups, many zeros, to exercise the choice of the compressed run.
      const g = Array.from({ length: 8 }, () => (rnd() % 3 === 0 ? (rnd() >>> 4) & 0xffff : 0));
      samples.push(g.map((x) => x.toString(16)).join(':'));
    }
    for (const text of samples) {
      const expected = new SocketAddress({ address: text, family: 'ipv6' }).address;
      expect(formatAddress16(bytes(text)), text).toBe(expected);
    }
    expect(formatAddress16(bytes('::ffff:192.0.2.1'))).toBe('192.0.2.1');
    expect(formatAddress16(bytes('198.51.100.7'))).toBe('198.51.100.7');
    expect(formatAddress16(bytes('fe80::1%lo'))).toBe('fe80::1');
  });

  it('stays correct with more addresses than capacity (entries are overwritten, not added)', () => {
    const cache = new AddressCache(16);
    const addrs = new Uint8Array(16);
    for (let i = 0; i < 5000; i++) {
      const text = `2001:db8::${((i % 1000) + 1).toString(16)}`;
      parseAddress16(text, addrs);
      expect(cache.get(addrs, 0)).toBe(text);
      expect(cache.get(addrs, 0)).toBe(text); // just inserted: a hit
    }
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 5000, misses: 5000 });
  });
});
