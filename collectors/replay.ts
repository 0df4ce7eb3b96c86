import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import type { CapturedDatagram } from './pcap.js';

export interface ReplayOptions {
  host: string;
  port: number;
  /**
   * Pacing: `speed` multiplies the capture's own timing (1 = as captured, 10 = ten times
   * faster, 0 = no pauses); `rate` sends at a fixed number of datagrams per second instead.
   */
  speed: number;
  rate: number | undefined;
  /** Replay only datagrams whose original destination port is this (0 = all). */
  onlyDstPort: number;
  /**
   * Local address to send from (e.g. 127.0.0.2: any 127/8 address works on loopback), so
   * one host can play several exporters. Default: the system's choice.
   */
  bindAddress?: string;
}

export interface ReplayResult {
  sent: number;
  sockets: number;
  bytes: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Re-sends a capture's UDP payloads to a collector. One local socket per original
 * (source address, source port), so the collector sees as many transport sessions as the
 * capture had: IPFIX templates stay scoped to their session as RFC 7011 section 8 requires.
 */
export async function replayDatagrams(datagrams: readonly CapturedDatagram[], opts: ReplayOptions): Promise<ReplayResult> {
  const family = isIPv4(opts.host) ? 'udp4' : 'udp6';
  const sockets = new Map<string, Socket>();
  const result: ReplayResult = { sent: 0, sockets: 0, bytes: 0 };
  const wanted = datagrams.filter((d) => opts.onlyDstPort === 0 || d.dstPort === opts.onlyDstPort);
  const startWall = performance.now();
  const startCapture = wanted[0]?.timeMs ?? 0;
  try {
    for (const [i, d] of wanted.entries()) {
      const key = `${d.srcAddr}|${d.srcPort}`;
      let socket = sockets.get(key);
      if (!socket) {
        socket = createSocket(family);
        await new Promise<void>((resolve, reject) => {
          socket!.once('error', reject);
          socket!.bind({ port: 0, ...(opts.bindAddress ? { address: opts.bindAddress } : {}) }, () => resolve());
        });
        sockets.set(key, socket);
      }
      // Pacing: wait until this datagram's due time.
      let dueMs: number | undefined;
      if (opts.rate !== undefined && opts.rate > 0) dueMs = (i / opts.rate) * 1000;
      else if (opts.speed > 0) dueMs = (d.timeMs - startCapture) / opts.speed;
      if (dueMs !== undefined) {
        const wait = dueMs - (performance.now() - startWall);
        if (wait > 1) await sleep(wait);
      }
      const s = socket;
      await new Promise<void>((resolve, reject) => s.send(d.payload, opts.port, opts.host, (err) => (err ? reject(err) : resolve())));
      result.sent++;
      result.bytes += d.payload.length;
    }
  } finally {
    result.sockets = sockets.size;
    await Promise.all([...sockets.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
  return result;
}

/** Parses "HOST:PORT", "[v6]:PORT". */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--to ${JSON.stringify(text)} is not HOST:PORT`);
  return { host: m[1]!, port };
}
