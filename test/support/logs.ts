/** Captures a real logger's JSON lines (a pino destination that parses each line) for exact assertions. */
import { createLogger, type LoggerOptions, type Logger, type LogThreshold } from '../../src/log.js';

/** One parsed line; `time` is dropped so lines compare exactly. */
export type LogLine = Record<string, unknown> & { level: string; msg: string };

export interface CapturedLog {
  log: Logger;
  /** Every line so far, parsed, without `time`. */
  lines: LogLine[];
}

export function captureLog(level: LogThreshold = 'trace', opts: Omit<LoggerOptions, 'level' | 'destination'> = {}): CapturedLog {
  const lines: LogLine[] = [];
  const destination = {
    write(s: string): void {
      for (const line of s.split('\n')) {
        if (line === '') continue;
        const { time: _time, ...rest } = JSON.parse(line) as LogLine;
        lines.push(rest as LogLine);
      }
    },
  };
  return { log: createLogger({ level, destination, ...opts }), lines };
}
