/**
 * The one logger every component takes: level methods with an optional object of structured
 * fields, child loggers that add fields (`component`, `worker`, ...), and a rate limit per
 * key. The main thread's logger writes JSON lines through pino (or human lines through
 * pino-pretty); a decode worker's logger hands level, message and fields to the main thread,
 * which logs them through the same pino instance.
 *
 * The rate limit: hostile or broken exporters can produce an error per datagram, and the log
 * must stay readable (and cheap) anyway. The first line of a key is logged, then at most one
 * per `intervalMs`, carrying `suppressed`: how many were dropped since the previous one.
 */
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
/** Levels a logger can be set to: the message levels plus 'silent' (log nothing). */
export type LogThreshold = LogLevel | 'silent';
export type LogFormat = 'json' | 'pretty';
/** Structured fields of one line; values should be plain data (they may cross threads). */
export type LogFields = Record<string, unknown>;

/** pino's numeric levels, so both logger kinds filter alike. */
const ORDER: Record<LogThreshold, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

export interface Logger {
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  fatal(msg: string, fields?: LogFields): void;
  log(level: LogLevel, msg: string, fields?: LogFields): void;
  /**
   * Logs under `key` at most once per interval and counts the rest; the next line that gets
   * through carries `suppressed: N`. Keys are per component (a child's bindings are part of
   * the key), and at most `maxKeys` are remembered.
   */
  limited(key: string, level: LogLevel, msg: string, fields?: LogFields): void;
  /** True when a line at `level` would be written (to skip building costly fields). */
  enabled(level: LogLevel): boolean;
  /**
   * A logger whose lines all carry `bindings`; it shares the parent's output and rate limits.
   * Do not rebind a key the parent has (pino would write it twice): make a sibling instead.
   */
  child(bindings: LogFields): Logger;
  /** The pino instance underneath (fastify logs through it); undefined in a decode worker. */
  readonly pino: PinoLogger | undefined;
}

/** Where a logger's lines go: pino on the main thread, the parent port in a worker. */
interface Backend {
  enabled(level: LogLevel): boolean;
  write(level: LogLevel, msg: string, fields: LogFields | undefined): void;
  child(bindings: LogFields): Backend;
  readonly pino: PinoLogger | undefined;
}

interface LimitOptions {
  now?: () => number;
  intervalMs?: number;
  maxKeys?: number;
}

/** Last time per key and what was dropped since; bounded, oldest keys forgotten first. */
class RateLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly maxKeys: number;

  constructor(opts: LimitOptions) {
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.maxKeys = opts.maxKeys ?? 10_000;
  }

  /** -1 when this line is to be dropped; otherwise how many were dropped before it. */
  pass(key: string): number {
    const t = this.now();
    const entry = this.last.get(key);
    if (entry && t - entry.at < this.intervalMs) {
      entry.suppressed++;
      return -1;
    }
    // Map keeps insertion order: re-inserting makes the key the newest.
    if (!entry && this.last.size >= this.maxKeys) {
      const oldest = this.last.keys().next().value;
      if (oldest !== undefined) this.last.delete(oldest);
    }
    this.last.delete(key);
    this.last.set(key, { at: t, suppressed: 0 });
    return entry?.suppressed ?? 0;
  }
}

class LimitedLogger implements Logger {
  constructor(
    private readonly backend: Backend,
    private readonly limiter: RateLimiter,
    /** Prefix of rate-limit keys: the bindings of this child, so components never share a key. */
    private readonly keyPrefix: string,
  ) {}

  get pino(): PinoLogger | undefined {
    return this.backend.pino;
  }

  enabled(level: LogLevel): boolean {
    return this.backend.enabled(level);
  }

  log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (this.backend.enabled(level)) this.backend.write(level, msg, fields);
  }

  trace(msg: string, fields?: LogFields): void {
    this.log('trace', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
  fatal(msg: string, fields?: LogFields): void {
    this.log('fatal', msg, fields);
  }

  limited(key: string, level: LogLevel, msg: string, fields?: LogFields): void {
    // Below the threshold nothing is counted either: the check must stay cheap per datagram.
    if (!this.backend.enabled(level)) return;
    const suppressed = this.limiter.pass(this.keyPrefix + key);
    if (suppressed < 0) return;
    this.backend.write(level, msg, suppressed > 0 ? { ...fields, suppressed } : fields);
  }

  child(bindings: LogFields): Logger {
    return new LimitedLogger(this.backend.child(bindings), this.limiter, `${this.keyPrefix}${JSON.stringify(bindings)}|`);
  }
}

class PinoBackend implements Backend {
  constructor(readonly pino: PinoLogger) {}
  enabled(level: LogLevel): boolean {
    return this.pino.isLevelEnabled(level);
  }
  write(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (fields === undefined) this.pino[level](msg);
    else this.pino[level](fields, msg);
  }
  child(bindings: LogFields): Backend {
    return new PinoBackend(this.pino.child(bindings));
  }
}

/** What a worker's logger hands over: the main thread logs it as is (already rate-limited). */
export type LogEmit = (level: LogLevel, msg: string, fields: LogFields | undefined) => void;

class EmitBackend implements Backend {
  readonly pino = undefined;
  constructor(
    private readonly threshold: number,
    private readonly emit: LogEmit,
    private readonly bindings: LogFields | undefined,
  ) {}
  enabled(level: LogLevel): boolean {
    return ORDER[level] >= this.threshold;
  }
  write(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    const all = this.bindings === undefined ? fields : { ...this.bindings, ...fields };
    // Fields cross threads by structured clone: plain data and Error objects (which arrive as
    // errors, so the main thread's pino serializes them as its own).
    this.emit(level, msg, all);
  }
  child(bindings: LogFields): Backend {
    return new EmitBackend(this.threshold, this.emit, { ...this.bindings, ...bindings });
  }
}

export interface LoggerOptions extends LimitOptions {
  level: LogThreshold;
  /** 'json' (default): one JSON object per line; 'pretty': coloured human lines (pino-pretty). */
  format?: LogFormat;
  /** Where lines go (default: stderr, written synchronously). Tests pass a stream to capture them. */
  destination?: DestinationStream;
  /** Fields on every line; default none (pino's pid and hostname are left out: one process, one host). */
  base?: LogFields;
}

/**
 * The main thread's logger. JSON by default; lines go to stderr so that stdout stays the
 * command's own output (the `ingest` document, `--dump-config`). Writes are synchronous:
 * the volume is small (info is quiet, hot-path lines are rate-limited), and nothing logged
 * just before an exit is lost.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const options = {
    level: opts.level,
    base: opts.base ?? null,
    // ISO time and level names rather than epoch ms and numbers: read by people and jq alike.
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const destination = opts.destination ?? (opts.format === 'pretty' ? prettyStream() : pino.destination({ fd: 2, sync: true }));
  return new LimitedLogger(new PinoBackend(pino(options, destination)), new RateLimiter(opts), '');
}

/**
 * Human lines for a terminal: "12:00:01.234 INFO  serve: message key=value". pino-pretty runs
 * in-process with `sync: true` (no transport thread), so lines stay in order with everything
 * else the process writes and none is lost at exit. Loaded only when asked for: JSON logging
 * (the daemon's normal case) does not load it.
 */
function prettyStream(): DestinationStream {
  const require = createRequire(import.meta.url);
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  return pretty.build({
    sync: true,
    destination: 2,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'component',
    messageFormat: '{if component}{component}: {end}{msg}',
    singleLine: true,
    colorize: process.stderr.isTTY === true,
  });
}

/** A decode worker's logger: rate-limits in the worker, hands the lines that pass to `emit`. */
export function createForwardingLogger(opts: LimitOptions & { level: LogThreshold; emit: LogEmit }): Logger {
  return new LimitedLogger(new EmitBackend(ORDER[opts.level], opts.emit, undefined), new RateLimiter(opts), '');
}

/** A logger that writes nothing (tests, tools that want none). */
export function silentLogger(): Logger {
  return createForwardingLogger({ level: 'silent', emit: () => {} });
}
