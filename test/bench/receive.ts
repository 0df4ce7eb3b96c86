/**
 * UDP receive cost: CPU time of this process (process.cpuUsage, user + system) per received
 * datagram, native recvmmsg(2) batches vs the node:dgram fallback ('single': a batch of one
 * per datagram; 'gather': copied into one batch per event-loop turn). A child process sends
 * over loopback, so the sender's CPU (and the kernel's loopback delivery, done in the
 * sender's send call) is not counted; what is counted is what the collector pays to get each
 * datagram into JavaScript as (payload copy, source address string, source port), which is
 * what collectors/udp.ts needs before queueing ('copy'), and without the copy ('peek').
 *
 * Loads: 'blast' (the child sends as fast as Node can send, about 130k datagrams/s here; the
 * receiver keeps up, so batches stay small), 'paced' (a steady rate; small batches, the
 * per-wake-up cost shows) and 'backlog' (the event loop is blocked while the child fills the
 * socket, then the queue is drained: full batches, the regime of an overloaded collector).
 *
 * User/system split: Linux samples it per tick (the total is exact), so read the total.
 *
 * Runnable alone after `npm run build` with
 *   node -e "import('./dist/test/bench/receive.js').then(m => m.benchReceive()).then(r => console.log(r))"
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  AddressCache,
  createDatagramReceiver,
  nativeReceiveStatus,
  type DatagramReceiverOptions,
  type ReceivedBatch,
} from '../../collectors/batch-receive.js';
import { median } from './common.js';

export interface ReceiveBenchOptions {
  /** Datagrams per blast run (default 200,000) and per paced run (default 100,000). */
  blastCount?: number;
  pacedCount?: number;
  /** Paced send rate, datagrams/s (default 50,000). */
  pacedRate?: number;
  /** Payload size in octets (default 1,400: a full IPFIX export datagram). */
  size?: number;
  /** Runs per configuration (default 3; the median is reported). */
  runs?: number;
}

interface RunResult {
  sent: number;
  received: number;
  batches: number;
  userUs: number;
  systemUs: number;
  seconds: number;
  kernelDrops: number | undefined;
}

async function quiet(received: () => number, ms: number): Promise<void> {
  for (let seen = -1; seen !== received();) {
    seen = received();
    await new Promise((res) => setTimeout(res, ms));
  }
}

/** The sender: a connected UDP socket (no per-send address lookup), started by a line on stdin. */
const SENDER = `
const dgram = require('node:dgram');
const [port, n, size, rate] = process.argv.slice(1).map(Number);
const s = dgram.createSocket('udp4');
const payload = Buffer.alloc(size, 0x5a);
s.connect(port, '127.0.0.1', () => {
  process.stdout.write('ready\\n');
  process.stdin.once('data', async () => {
    let sent = 0;
    const burst = (k) => new Promise((res) => { for (let i = 0; i < k; i++) s.send(payload, i === k - 1 ? res : undefined); });
    if (rate === 0) {
      while (sent < n) { const k = Math.min(256, n - sent); await burst(k); sent += k; }
    } else {
      // Every 2 ms, catch up with rate * elapsed: steady, not bursty.
      const t0 = performance.now();
      while (sent < n) {
        const due = Math.min(n, Math.floor(((performance.now() - t0) / 1000) * rate));
        if (due > sent) { await burst(due - sent); sent = due; }
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    s.close();
    process.stdout.write(JSON.stringify({ sent }) + '\\n');
    process.stdin.destroy();
  });
});
`;

/** 'copy': own copy of the payload + address string + port (what collectors/udp.ts needs);
 * 'peek': address string + port + length only (the receive path's own cost). */
type Consumer = 'copy' | 'peek';

function consume(
  cache: AddressCache,
  consumer: Consumer,
  counts: { received: number; batches: number; lastAt: number; sink: number },
): (b: ReceivedBatch) => void {
  const copy = consumer === 'copy';
  return (b: ReceivedBatch): void => {
    counts.batches++;
    let sink = 0;
    for (let i = 0; i < b.count; i++) {
      const off = b.offsets[i]!;
      const len = copy ? b.data.slice(off, off + b.lengths[i]!).length : b.lengths[i]!;
      sink += len + cache.get(b.addrs, i).length + b.ports[i]!;
    }
    counts.sink += sink;
    counts.received += b.count;
    counts.lastAt = performance.now();
  };
}

async function runOnce(opts: DatagramReceiverOptions, count: number, size: number, rate: number, consumer: Consumer): Promise<RunResult> {
  const r = createDatagramReceiver({ bind: '127.0.0.1', port: 0, receiveBufferBytes: 8 << 20 }, opts);
  const counts = { received: 0, batches: 0, lastAt: 0, sink: 0 };
  await r.start(consume(new AddressCache(), consumer, counts));
  const child = spawn(process.execPath, ['-e', SENDER, String(r.port), String(count), String(size), String(rate)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s: string) => (out += s));
  while (!out.includes('ready\n')) await once(child.stdout, 'data');
  const exited = once(child, 'exit');

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  child.stdin.end('go\n'); // EOF too, or the child's stdin keeps it alive
  await exited;
  await quiet(() => counts.received, 100);
  const cpu = process.cpuUsage(cpu0);
  const stats = r.stats();
  await r.stop();
  const sent = (JSON.parse(out.slice(out.indexOf('{'))) as { sent: number }).sent;
  return {
    sent,
    received: counts.received,
    batches: counts.batches,
    userUs: cpu.user,
    systemUs: cpu.system,
    seconds: ((counts.lastAt || performance.now()) - t0) / 1000,
    kernelDrops: stats.kernelDrops,
  };
}

/**
 * Backlog: spawnSync blocks this event loop while the child sends `perRound` datagrams, so
 * they queue in the socket (up to its receive buffer); then only the drain is timed.
 */
async function runBacklog(
  opts: DatagramReceiverOptions,
  rounds: number,
  perRound: number,
  size: number,
  consumer: Consumer,
): Promise<RunResult> {
  const r = createDatagramReceiver({ bind: '127.0.0.1', port: 0, receiveBufferBytes: 8 << 20 }, opts);
  const counts = { received: 0, batches: 0, lastAt: 0, sink: 0 };
  await r.start(consume(new AddressCache(), consumer, counts));
  let userUs = 0;
  let systemUs = 0;
  let seconds = 0;
  let sent = 0;
  for (let i = 0; i < rounds; i++) {
    const c = spawnSync(process.execPath, ['-e', SENDER, String(r.port), String(perRound), String(size), '0'], { input: 'go\n' });
    if (c.status !== 0) throw new Error(`sender failed: ${String(c.stderr)}`);
    sent += perRound;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await quiet(() => counts.received, 50);
    const cpu = process.cpuUsage(cpu0);
    userUs += cpu.user;
    systemUs += cpu.system;
    seconds += (counts.lastAt - t0) / 1000;
  }
  const stats = r.stats();
  await r.stop();
  return { sent, received: counts.received, batches: counts.batches, userUs, systemUs, seconds, kernelDrops: stats.kernelDrops };
}

export async function benchReceive(o: ReceiveBenchOptions = {}): Promise<Record<string, unknown>> {
  const size = o.size ?? 1400;
  const runs = o.runs ?? 3;
  const paced = o.pacedRate ?? 50_000;
  const blast = o.blastCount ?? 200_000;
  const loads: { name: string; run: (k: DatagramReceiverOptions) => Promise<RunResult> }[] = [
    { name: 'blast, copy', run: (k) => runOnce(k, blast, size, 0, 'copy') },
    { name: 'blast, peek', run: (k) => runOnce(k, blast, size, 0, 'peek') },
    { name: `paced ${Math.round(paced / 1000)}k/s, copy`, run: (k) => runOnce(k, o.pacedCount ?? 100_000, size, paced, 'copy') },
    // 3,000 x 1,400 octets fit even the 8 MiB node:dgram gets where net.core.rmem_max is
    // 4 MiB (each costs about 2.3 KiB of socket memory); the addon may force 16 MiB as root.
    { name: 'backlog, copy', run: (k) => runBacklog(k, 15, 3000, size, 'copy') },
    { name: 'backlog, peek', run: (k) => runBacklog(k, 15, 3000, size, 'peek') },
  ];
  const status = nativeReceiveStatus();
  const kinds: { name: string; opts: DatagramReceiverOptions }[] = [
    ...(status.available ? [{ name: 'native', opts: { native: 'auto' } as const }] : []),
    { name: 'dgram single', opts: { native: 'off', dgramDelivery: 'single' } },
    { name: 'dgram gather', opts: { native: 'off', dgramDelivery: 'gather' } },
  ];
  const out: Record<string, unknown> = { 'payload octets': size, runs };
  if (!status.available) out['native'] = `not available: ${status.reason}`;
  // Warm-up (JIT of the consumer and the receive paths), not reported.
  for (const k of kinds) await runOnce(k.opts, 20_000, size, 0, 'copy');
  for (const load of loads) {
    const byKind = new Map<string, RunResult[]>(kinds.map((k) => [k.name, []]));
    // Kinds interleaved per round, so a noisy neighbour hurts all of them alike.
    for (let i = 0; i < runs; i++) for (const k of kinds) byKind.get(k.name)!.push(await load.run(k.opts));
    for (const k of kinds) {
      const rs = byKind.get(k.name)!;
      const per = (f: (r: RunResult) => number): number => median(rs.map((r) => f(r) / Math.max(1, r.received)));
      const cpu = per((r) => r.userUs + r.systemUs);
      out[`${load.name}: ${k.name} CPU µs/datagram`] = cpu.toFixed(2);
      out[`${load.name}: ${k.name} detail`] =
        `user ${per((r) => r.userUs).toFixed(2)} + sys ${per((r) => r.systemUs).toFixed(2)} µs; ` +
        `${Math.round(median(rs.map((r) => r.received / r.seconds)) / 1000)}k/s received; ` +
        `${median(rs.map((r) => r.received / Math.max(1, r.batches))).toFixed(1)} datagrams/batch; ` +
        `received/sent ${rs.map((r) => `${r.received}/${r.sent}`).join(' ')}` +
        (rs[0]!.kernelDrops !== undefined ? `; SO_RXQ_OVFL drops ${rs.map((r) => r.kernelDrops).join(' ')}` : '');
    }
  }
  return out;
}
