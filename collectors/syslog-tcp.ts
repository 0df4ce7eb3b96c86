/**
 * Fireflies over TCP syslog (RFC 6587), on the firefly port number: relays (syslog-ng,
 * rsyslog) forward that way. Both framings of RFC 6587 section 3.4, told apart per message
 * by its first byte:
 * - octet counting (3.4.1): `MSG-LEN SP SYSLOG-MSG`, MSG-LEN a decimal without leading zero;
 * - non-transparent framing (3.4.2): the message ends at LF (a CR before it is dropped; NUL
 *   and empty lines between messages are skipped).
 * Each message goes to the decode stage as one datagram of the 'firefly' listener, so it is
 * counted, rate-limited and crash-isolated like a UDP firefly.
 *
 * Bounded: connections at once (more are refused and counted), bytes per message (the first
 * maxMessageBytes + 1 of a longer one go to the decoder, which counts it `too-large`, and the
 * rest is skipped without buffering), idle connections closed after a timeout. A malformed
 * MSG-LEN closes the connection (the stream has no way to find the next frame): counted.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { type ExporterAllowList, normalizeAddress } from './allowlist.js';
import type { SubmitDatagram } from './udp.js';

export const DEFAULT_SYSLOG_MAX_CONNECTIONS = 256;
export const DEFAULT_SYSLOG_IDLE_SECONDS = 300;

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const NUL = 0x00;
/** RFC 6587 MSG-LEN digits read at most (a 9-digit length is already ~1 GB). */
const MAX_LEN_DIGITS = 9;

export interface SyslogTcpConfig {
  port: number;
  bind: string;
  maxConnections: number;
  idleTimeoutMs: number;
  /** Longest message handed on whole; FIREFLY_MAX_BYTES. */
  maxMessageBytes: number;
}

export interface SyslogTcpStats {
  /** Connections accepted, refused over maxConnections, denied by the exporter allow-list. */
  connections: number;
  refused: number;
  deniedByAllowList: number;
  /** Connections closed for idling past the timeout, and for an unreadable octet count. */
  idleTimeouts: number;
  framingErrors: number;
  /** Messages handed to the decode stage (oversized ones as their first bytes), and their bytes. */
  messages: number;
  bytes: number;
  /** Messages longer than maxMessageBytes (decoded as `too-large`). */
  oversized: number;
  queueDrops: number;
}

/** One connection's framing state: pure, fed chunks, emits messages (tested without sockets). */
export class SyslogFramer {
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes of an oversized octet-counted message still to skip. */
  private skip = 0;
  /** An oversized LF-framed message: skip up to its LF. */
  private skipToLf = false;
  oversized = 0;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly emit: (message: Buffer) => void,
  ) {}

  /** Feeds received bytes; false when the stream is unreadable (a bad MSG-LEN): close it. */
  push(chunk: Buffer): boolean {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const max = this.maxMessageBytes;
    for (;;) {
      let buf = this.buf;
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length);
        this.skip -= n;
        this.buf = buf.subarray(n);
        if (this.skip > 0) return true;
        continue;
      }
      if (this.skipToLf) {
        const i = buf.indexOf(LF);
        if (i < 0) {
          this.buf = Buffer.alloc(0);
          return true;
        }
        this.skipToLf = false;
        this.buf = buf.subarray(i + 1);
        continue;
      }
      let k = 0;
      while (k < buf.length && (buf[k] === LF || buf[k] === CR || buf[k] === NUL)) k++;
      buf = this.buf = buf.subarray(k);
      if (buf.length === 0) return true;
      const first = buf[0]!;
      if (first >= 0x31 && first <= 0x39) {
        // RFC 6587 3.4.1: MSG-LEN = NONZERO-DIGIT *DIGIT, then SP.
        let sp = 1;
        while (sp < buf.length && sp < MAX_LEN_DIGITS && buf[sp]! >= 0x30 && buf[sp]! <= 0x39) sp++;
        if (sp >= buf.length) return true; // the length is not complete yet
        if (buf[sp] !== SP) return false;
        const len = Number(buf.toString('latin1', 0, sp));
        const body = buf.subarray(sp + 1);
        if (len > max) {
          if (body.length < max + 1) return true;
          this.oversized++;
          this.emit(body.subarray(0, max + 1));
          this.skip = len - (max + 1);
          this.buf = body.subarray(max + 1);
          continue;
        }
        if (body.length < len) return true;
        this.emit(body.subarray(0, len));
        this.buf = body.subarray(len);
        continue;
      }
      // RFC 6587 3.4.2: non-transparent framing, LF as the trailer.
      const lf = buf.indexOf(LF);
      if (lf < 0) {
        if (buf.length > max) {
          this.oversized++;
          this.emit(buf.subarray(0, max + 1));
          this.skipToLf = true;
          this.buf = Buffer.alloc(0);
        }
        return true;
      }
      const end = lf > 0 && buf[lf - 1] === CR ? lf - 1 : lf;
      if (end > max) this.oversized++;
      this.emit(buf.subarray(0, end));
      this.buf = buf.subarray(lf + 1);
    }
  }

  /** The connection ended: an LF-framed message without its trailer still counts. */
  end(): void {
    const buf = this.buf;
    this.buf = Buffer.alloc(0);
    if (this.skip > 0 || this.skipToLf || buf.length === 0) return;
    const first = buf[0]!;
    if (first >= 0x31 && first <= 0x39) return; // an octet-counted message cut short: nothing to decode
    this.emit(buf);
  }
}

export class SyslogTcpListener {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  readonly stats: SyslogTcpStats = {
    connections: 0,
    refused: 0,
    deniedByAllowList: 0,
    idleTimeouts: 0,
    framingErrors: 0,
    messages: 0,
    bytes: 0,
    oversized: 0,
    queueDrops: 0,
  };
  private boundPort = 0;

  constructor(
    readonly config: SyslogTcpConfig,
    private readonly submit: SubmitDatagram,
    private readonly allowList: ExporterAllowList,
    private readonly now: () => number = Date.now,
  ) {}

  get port(): number {
    return this.boundPort;
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  async start(): Promise<void> {
    const server = createServer((s) => this.onConnection(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // ipv6Only false: '::' takes IPv4 relays too, as the UDP listener does.
      server.listen({ port: this.config.port, host: this.config.bind, ipv6Only: false }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr !== null ? addr.port : this.config.port;
    this.server = server;
  }

  private onConnection(socket: Socket): void {
    const srcAddr = normalizeAddress(socket.remoteAddress ?? '');
    const srcPort = socket.remotePort ?? 0;
    socket.on('error', () => {}); // resets by the peer: the connection just ends
    if (!this.allowList.allows(srcAddr)) {
      this.stats.deniedByAllowList++;
      socket.destroy();
      return;
    }
    if (this.sockets.size >= this.config.maxConnections) {
      this.stats.refused++;
      socket.destroy();
      return;
    }
    this.stats.connections++;
    this.sockets.add(socket);
    const framer = new SyslogFramer(this.config.maxMessageBytes, (message) => {
      this.stats.messages++;
      this.stats.bytes += message.length;
      const d = { payload: message, srcAddr, srcPort, localPort: this.boundPort, receivedMs: this.now() };
      if (!this.submit(d, false)) this.stats.queueDrops++;
    });
    socket.setTimeout(this.config.idleTimeoutMs);
    socket.on('timeout', () => {
      this.stats.idleTimeouts++;
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => {
      if (!framer.push(chunk)) {
        this.stats.framingErrors++;
        socket.destroy();
      }
    });
    socket.on('end', () => {
      framer.end();
      socket.end();
    });
    socket.on('close', () => {
      this.stats.oversized += framer.oversized;
      framer.oversized = 0;
      this.sockets.delete(socket);
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
