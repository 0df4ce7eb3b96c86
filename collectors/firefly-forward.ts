/**
 * Forwarding of accepted fireflies (issue 13 "Forward"): each one, byte for byte as it
 * arrived, to every configured upstream collector over UDP, as sites forward to their NREN's
 * collector today. Only fireflies that passed validation get here (the decode stage calls
 * forward() from its accept path), so nothing malformed is ever relayed.
 *
 * Per destination: a token bucket (maxPerSecond, refilled by the caller's clock, no timer) and
 * counters of forwarded, rate-limited and failed sends. A destination that does not resolve
 * or whose sends fail is counted, never fatal.
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { newBucket, takeToken, type TokenBucket } from '../src/pipeline/rate-limit.js';

/** Fireflies per second sent to one destination by default (a busy site sends tens). */
export const DEFAULT_FORWARD_MAX_PER_SECOND = 1000;

/** "host:port" or "[v6]:port" -> parts; undefined when it is not one. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined && isIP(host) !== 6) return undefined;
  return { host, port };
}

export interface ForwardStats {
  destination: string;
  forwarded: number;
  rateLimited: number;
  sendErrors: number;
}

interface Destination {
  stats: ForwardStats;
  host: string;
  port: number;
  /** Resolved at start; undefined when the name did not resolve (every send is an error). */
  address: string | undefined;
  family: 4 | 6;
  bucket: TokenBucket | undefined;
}

export class FireflyForwarder {
  private readonly destinations: Destination[];
  private socket4: Socket | undefined;
  private socket6: Socket | undefined;

  constructor(
    destinations: readonly string[],
    private readonly maxPerSecond: number,
    private readonly onError: (destination: string, err: unknown) => void = () => {},
  ) {
    this.destinations = destinations.map((d) => {
      const hp = parseHostPort(d);
      if (!hp) throw new Error(`forward destination ${JSON.stringify(d)} is not host:port`);
      return {
        stats: { destination: d, forwarded: 0, rateLimited: 0, sendErrors: 0 },
        host: hp.host,
        port: hp.port,
        address: undefined,
        family: 4,
        bucket: undefined,
      };
    });
  }

  get enabled(): boolean {
    return this.destinations.length > 0;
  }

  /** Resolves each destination once and opens the sockets; a name that does not resolve is counted on every send. */
  async start(): Promise<void> {
    for (const d of this.destinations) {
      try {
        const r = isIP(d.host) !== 0 ? { address: d.host, family: isIP(d.host) } : await lookup(d.host);
        d.address = r.address;
        d.family = r.family === 6 ? 6 : 4;
      } catch (err) {
        this.onError(d.stats.destination, err);
      }
    }
    const open = (type: 'udp4' | 'udp6'): Socket => {
      const s = createSocket(type);
      // A send error (ICMP unreachable reported on a later send, EPERM) is counted per send.
      s.on('error', () => {});
      s.unref();
      return s;
    };
    if (this.destinations.some((d) => d.family === 4)) this.socket4 = open('udp4');
    if (this.destinations.some((d) => d.family === 6)) this.socket6 = open('udp6');
  }

  /**
   * Sends the message to every destination with a token left. `payload` may be a view of a
   * receive buffer valid during the call only: it is copied once, when something is sent.
   */
  forward(payload: Uint8Array, nowMs: number): void {
    let copy: Buffer | undefined;
    for (const d of this.destinations) {
      const rate = this.maxPerSecond;
      if (rate > 0 && !takeToken((d.bucket ??= newBucket(rate, nowMs)), rate, nowMs)) {
        d.stats.rateLimited++;
        continue;
      }
      const socket = d.family === 6 ? this.socket6 : this.socket4;
      if (d.address === undefined || socket === undefined) {
        d.stats.sendErrors++;
        continue;
      }
      copy ??= Buffer.from(payload);
      const stats = d.stats;
      try {
        socket.send(copy, d.port, d.address, (err) => {
          if (err) {
            stats.sendErrors++;
            this.onError(stats.destination, err);
          } else stats.forwarded++;
        });
      } catch (err) {
        // A socket already closed (stop raced a late firefly): counted, not thrown into decoding.
        stats.sendErrors++;
        this.onError(stats.destination, err);
      }
    }
  }

  stats(): ForwardStats[] {
    return this.destinations.map((d) => ({ ...d.stats }));
  }

  async stop(): Promise<void> {
    const close = (s: Socket | undefined): Promise<void> =>
      s ? new Promise<void>((resolve) => s.close(() => resolve())) : Promise.resolve();
    await Promise.all([close(this.socket4), close(this.socket6)]);
    this.socket4 = undefined;
    this.socket6 = undefined;
  }
}
