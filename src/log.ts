/**
 * Logging with a rate limit per key: hostile or broken exporters can produce an error per
 * datagram, and the log must stay readable (and cheap) anyway. The first line of a key is
 * printed, then at most one per `intervalMs`, reporting how many were suppressed between.
 */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
/** Levels a logger can be set to: the message levels plus 'silent' (log nothing). */
export type LogThreshold = LogLevel | 'silent';
const ORDER: Record<LogThreshold, number> = { trace: 5, debug: 10, info: 20, warn: 30, error: 40, fatal: 50, silent: 100 };

export interface Logger {
  log(level: LogLevel, msg: string): void;
  /** Logs under `key` at most once per interval; counts the rest. */
  limited(key: string, level: LogLevel, msg: string): void;
}

export function createLogger(opts: {
  level: LogThreshold;
  write?: (line: string) => void;
  /**
   * Receives level and message instead of a formatted line (replaces `write`): a decode
   * worker rate-limits here and hands the lines to the main thread's logger.
   */
  emit?: (level: LogLevel, msg: string) => void;
  now?: () => number;
  intervalMs?: number;
  maxKeys?: number;
}): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const now = opts.now ?? Date.now;
  const intervalMs = opts.intervalMs ?? 10_000;
  const maxKeys = opts.maxKeys ?? 10_000;
  const last = new Map<string, { at: number; suppressed: number }>();
  const emit = opts.emit ?? ((level: LogLevel, msg: string) => write(`${new Date(now()).toISOString()} ${level} ${msg}`));
  const log = (level: LogLevel, msg: string): void => {
    if (ORDER[level] < ORDER[opts.level]) return;
    emit(level, msg);
  };
  return {
    log,
    limited(key, level, msg) {
      if (ORDER[level] < ORDER[opts.level]) return;
      const t = now();
      const entry = last.get(key);
      if (entry && t - entry.at < intervalMs) {
        entry.suppressed++;
        return;
      }
      // Bounded: forget the oldest keys first (Map keeps insertion order).
      if (!entry && last.size >= maxKeys) {
        const oldest = last.keys().next().value;
        if (oldest !== undefined) last.delete(oldest);
      }
      const suffix = entry && entry.suppressed > 0 ? ` (${entry.suppressed} similar suppressed)` : '';
      last.delete(key);
      last.set(key, { at: t, suppressed: 0 });
      log(level, msg + suffix);
    },
  };
}
