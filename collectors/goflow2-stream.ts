/**
 * goflow2's binary output as an input: `goflow2 -format=bin` writes each FlowMessage prefixed
 * with its length as a varint (Go's protodelim.MarshalTo), and its file transport (stdout, a
 * file or a FIFO) follows each with `-transport.file.sep`, a newline unless set otherwise
 * (goflow2 transport/file); the separator is a setting here (inputs.goflow2Separator:
 * 'newline' or 'none') and is checked after every message, which also catches a stream that
 * lost its framing (`bad-separator`). This reads such a stream from a
 * regular file, a FIFO or stdin, splits it into messages and hands each to the decode stage
 * as one datagram of the 'goflow2' listener, so it is decoded, counted per exporter,
 * rate-limited and crash-isolated like a UDP datagram. The exporter of a message is its
 * sampler_address (the router), so links are router + interfaces as for the UDP inputs.
 *
 * Bounded: a message longer than maxMessageBytes is never buffered, and the stream is paused
 * while the decode stage's queue is over half full (a file is read as fast as the decoders
 * go, never into memory ahead of them; goflow2 writing a FIFO blocks meanwhile).
 *
 * A length prefix over the cap (or an unreadable one, or a wrong separator) leaves the stream without a way to find
 * the next message: a truthful length could be skipped, but a corrupt one (or goflow2 started
 * with -format=json) would then skip arbitrary data and frame garbage. So the error is counted
 * and the rest of the stream is discarded, counted in bytes: a regular file stops there, a
 * FIFO or stdin is drained to its end of file (the writer closing: goflow2 restarted), after
 * which a FIFO is opened again and its next writer starts at a message boundary. A stream
 * that ends inside a message counts a `truncated` error.
 */
import { closeSync, constants, createReadStream, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { DecodeError } from '../decoders/errors.js';
import { messageExporter } from '../decoders/goflow2/decoder.js';
import { emptyScan } from '../decoders/goflow2/wire.js';
import type { ReceivedDatagram } from './queue.js';

/** The longest FlowMessage read by default: goflow2's are a few hundred bytes. */
export const DEFAULT_GOFLOW2_MAX_MESSAGE_BYTES = 65536;
/** A varint length prefix is at most 10 bytes. */
const MAX_PREFIX = 10;
/** goflow2's default -transport.file.sep. */
const NEWLINE = 0x0a;
/** inputs.goflow2Separator: what follows each message. */
export const GOFLOW2_SEPARATORS = ['newline', 'none'] as const;
export type Goflow2Separator = (typeof GOFLOW2_SEPARATORS)[number];
export const DEFAULT_GOFLOW2_SEPARATOR: Goflow2Separator = 'newline';

export function separatorByte(s: Goflow2Separator): number | undefined {
  return s === 'newline' ? NEWLINE : undefined;
}

/**
 * Splits a length-delimited stream into messages: pure, fed chunks, pulled one message at a
 * time (so the caller can stop between two messages and keep the rest). Holds at most one
 * chunk plus one partial message (<= maxMessageBytes + 10 bytes).
 */
export class Goflow2Framer {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** A message was returned and its separator byte is still to be read. */
  private separatorDue = false;
  /** Set once the stream cannot be framed any more (the error next() returned). */
  failed: DecodeError | undefined;
  /** Bytes dropped after a framing error. */
  discarded = 0;

  /** `separator`: the byte after each message (goflow2's file transport: a newline), or none. */
  constructor(
    private readonly maxMessageBytes: number,
    private readonly separator: number | undefined,
  ) {}

  /** Bytes held, not yet returned as messages. */
  get buffered(): number {
    return this.buf.length - this.pos;
  }

  push(chunk: Buffer): void {
    if (this.failed) {
      this.discarded += chunk.length;
      return;
    }
    this.buf = this.pos >= this.buf.length ? chunk : Buffer.concat([this.buf.subarray(this.pos), chunk]);
    this.pos = 0;
  }

  /**
   * The next whole message (a view of the pushed bytes), undefined when more bytes are
   * needed, or the DecodeError that ends framing (returned once; the held bytes are dropped).
   */
  next(): Uint8Array | DecodeError | undefined {
    if (this.failed) return undefined;
    const buf = this.buf;
    if (this.separatorDue) {
      if (this.pos >= buf.length) return undefined;
      if (buf[this.pos] !== this.separator)
        return this.fail(
          new DecodeError('bad-separator', `byte 0x${buf[this.pos]!.toString(16)} after a message where the separator goes`, this.pos),
        );
      this.pos++;
      this.separatorDue = false;
    }
    const start = this.pos;
    let len = 0;
    let p = start;
    for (let shift = 1; ; shift *= 128) {
      if (p >= buf.length) return undefined; // the prefix is not complete yet
      if (p - start >= MAX_PREFIX) return this.fail(new DecodeError('bad-length', 'length prefix longer than 10 bytes', start));
      const b = buf[p++]!;
      len += (b & 0x7f) * shift;
      if (b < 0x80) break;
    }
    if (len > this.maxMessageBytes)
      return this.fail(new DecodeError('limit-exceeded', `FlowMessage length ${len} over the cap of ${this.maxMessageBytes} bytes`, start));
    if (buf.length - p < len) return undefined;
    this.pos = p + len;
    this.separatorDue = this.separator !== undefined;
    return buf.subarray(p, p + len);
  }

  /**
   * The stream ended: a message cut short is an error (its bytes are dropped); a last whole
   * message without its separator is not (it was handed on).
   */
  end(): DecodeError | undefined {
    const left = this.buffered;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    this.separatorDue = false;
    if (this.failed || left === 0) return undefined;
    return new DecodeError('truncated', `stream ended inside a FlowMessage (${left} bytes held)`);
  }

  /** Starts a new stream (a FIFO's next writer). */
  reset(): void {
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    this.separatorDue = false;
    this.failed = undefined;
  }

  private fail(e: DecodeError): DecodeError {
    this.failed = e;
    this.discarded += this.buffered;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return e;
  }
}

/** `goflow2:PATH` (PATH '-' is stdin). */
export interface Goflow2InputConfig {
  path: string;
  maxMessageBytes: number;
  separator: Goflow2Separator;
}

export interface Goflow2InputStats {
  /** Times the stream was opened (a FIFO: once per writer), and ended. */
  opens: number;
  /** Messages framed and handed to the decode stage, and their bytes (prefixes excluded). */
  messages: number;
  bytes: number;
  /**
   * Framing errors by code (limit-exceeded, bad-length, bad-separator: the rest of the stream
   * discarded; truncated: it ended mid-message).
   */
  framingErrors: Record<string, number>;
  /** Bytes discarded after a framing error. */
  discardedBytes: number;
  /**
   * Times the decode stage refused a message (its queue full, e.g. UDP traffic of the same
   * shard filled it): the message is offered again after a pause, not lost.
   */
  queueRefusals: number;
  /** Times reading paused for the decode stage to catch up. */
  pauses: number;
  /** Read errors (the path missing, permissions...). */
  readErrors: number;
}

/** What the input needs from the decode stage. */
export interface Goflow2Target {
  submit(d: ReceivedDatagram, transient: boolean): boolean;
  /** Datagrams waiting for decoding, and the stage's budget (over all workers). */
  queueStats(): { length: number; capacity: number };
  /** Decode workers: one sampler's messages go to one of them, which has its share of the budget. */
  readonly workerCount: number;
}

export interface Goflow2InputDeps {
  now: () => number;
  /** Framing errors, read errors, stream ends: for the log (the wiring rate-limits it). */
  onEvent?: (e: { kind: 'framing-error' | 'read-error' | 'opened' | 'ended'; message: string }) => void;
  /** Opens the stream (tests); by default the path, or stdin for '-'. */
  open?: (path: string) => { stream: Readable; reopen: boolean };
}

/** How long a paused stream waits before looking at the queue again. */
const PAUSE_MS = 5;

/**
 * A FIFO opened without blocking (O_NONBLOCK, as a net.Socket: epoll tells when its writer
 * writes or closes); a regular file as a file stream; '-' as stdin. `reopen`: open again at
 * end of file (a FIFO: wait for the next writer).
 */
export function openGoflow2Stream(path: string): { stream: Readable; reopen: boolean } {
  if (path === '-') return { stream: process.stdin, reopen: false };
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (fstatSync(fd).isFIFO()) return { stream: new Socket({ fd, readable: true, writable: false }), reopen: true };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  closeSync(fd);
  return { stream: createReadStream(path), reopen: false };
}

export class Goflow2StreamInput {
  readonly stats: Goflow2InputStats = {
    opens: 0,
    messages: 0,
    bytes: 0,
    framingErrors: {},
    discardedBytes: 0,
    queueRefusals: 0,
    pauses: 0,
    readErrors: 0,
  };
  private readonly framer: Goflow2Framer;
  private readonly scan = emptyScan();
  private stream: Readable | undefined;
  private paused = false;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  /** A message the stage refused, offered again first. */
  private held: Uint8Array | undefined;
  /** The stream closed while messages were still held: handled once they are handed on. */
  private ending: { reopen: boolean } | undefined;
  private doneResolve: (() => void) | undefined;
  /** Resolves when a stream that is not reopened has ended (a file read whole, stdin closed). */
  readonly done: Promise<void>;

  constructor(
    readonly config: Goflow2InputConfig,
    private readonly target: Goflow2Target,
    private readonly deps: Goflow2InputDeps,
  ) {
    this.framer = new Goflow2Framer(config.maxMessageBytes, separatorByte(config.separator));
    this.done = new Promise((r) => (this.doneResolve = r));
  }

  /** Opens the stream; throws when the path cannot be opened (serve fails to start). */
  start(): void {
    this.openStream();
  }

  private openStream(): void {
    const { stream, reopen } = (this.deps.open ?? openGoflow2Stream)(this.config.path);
    this.stats.opens++;
    this.framer.reset();
    this.deps.onEvent?.({
      kind: 'opened',
      message: `reading goflow2 input ${this.config.path}${reopen ? ' (a FIFO: waiting for its writer)' : ''}`,
    });
    this.stream = stream;
    stream.on('data', (chunk: Buffer | string) => {
      this.framer.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      // While paused the retry timer pumps (a chunk already in flight only adds to the framer).
      if (this.retry === undefined) this.pump();
    });
    stream.on('error', (err: Error) => {
      this.stats.readErrors++;
      this.deps.onEvent?.({ kind: 'read-error', message: `goflow2 input ${this.config.path}: ${err.message}` });
    });
    stream.once('close', () => this.onEnd(stream, reopen));
  }

  /**
   * Hands framed messages on until the framer needs bytes or the stage's queue is half full
   * (half of one worker's share: a sampler's messages all go to one worker).
   */
  private pump(): void {
    this.retry = undefined;
    if (this.stopped) return;
    const t = this.target;
    const highWater = Math.max(1, Math.floor(t.queueStats().capacity / t.workerCount / 2));
    for (;;) {
      if (t.queueStats().length >= highWater) return this.pauseFor();
      const m = this.held ?? this.framer.next();
      this.held = undefined;
      if (m === undefined) break;
      if (m instanceof DecodeError) {
        this.countFraming(m, 'the rest of this stream is discarded');
        break;
      }
      if (!this.submit(m)) {
        // Refused: kept (the stream is paused, so its bytes stay as they are) and offered again.
        this.held = m;
        this.stats.queueRefusals++;
        return this.pauseFor();
      }
    }
    this.stats.discardedBytes = this.framer.discarded;
    if (this.ending) return this.finishEnd(this.ending.reopen);
    if (this.paused) {
      this.paused = false;
      this.stream?.resume();
    }
  }

  private pauseFor(): void {
    if (!this.paused) {
      this.paused = true;
      this.stats.pauses++;
      this.stream?.pause();
    }
    this.retry = setTimeout(() => this.pump(), PAUSE_MS);
  }

  /** False when the stage refused it (not counted then: it is offered again). */
  private submit(m: Uint8Array): boolean {
    // The exporter is the router that sampled the flow (messageExporter).
    const d: ReceivedDatagram = {
      payload: m,
      srcAddr: messageExporter(m, this.scan),
      srcPort: 0,
      localPort: 0,
      receivedMs: this.deps.now(),
    };
    if (!this.target.submit(d, true)) return false;
    this.stats.messages++;
    this.stats.bytes += m.length;
    return true;
  }

  private countFraming(e: DecodeError, what: string): void {
    this.stats.framingErrors[e.code] = (this.stats.framingErrors[e.code] ?? 0) + 1;
    this.deps.onEvent?.({ kind: 'framing-error', message: `goflow2 input ${this.config.path}: ${e.message}; ${what}` });
  }

  /** The stream closed: what is still held is handed on (pump) before the end is handled. */
  private onEnd(stream: Readable, reopen: boolean): void {
    if (stream !== this.stream) return;
    this.ending = { reopen };
    if (this.retry === undefined) this.pump();
  }

  private finishEnd(reopen: boolean): void {
    this.ending = undefined;
    const cut = this.framer.end();
    if (cut) this.countFraming(cut, 'its bytes are dropped');
    this.stats.discardedBytes = this.framer.discarded;
    this.stream = undefined;
    this.paused = false;
    if (this.stopped) return;
    this.deps.onEvent?.({
      kind: 'ended',
      message: `goflow2 input ${this.config.path}: end of stream${reopen ? '; waiting for the next writer' : ''}`,
    });
    if (!reopen) {
      this.doneResolve?.();
      return;
    }
    try {
      this.openStream();
    } catch (err) {
      this.stats.readErrors++;
      this.deps.onEvent?.({ kind: 'read-error', message: `goflow2 input ${this.config.path}: ${(err as Error).message}` });
      this.doneResolve?.();
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.retry !== undefined) clearTimeout(this.retry);
    const s = this.stream;
    this.stream = undefined;
    if (s && s !== process.stdin) s.destroy();
    this.doneResolve?.();
    return Promise.resolve();
  }
}
