import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExporterContext } from '../../decoders/decoder.js';
import { ensureDir } from '../ensure-dir.js';

export interface CrashFixtureLimits {
  /** Files written at most (each crash writes one .bin and one .json). */
  maxFiles: number;
  /** Payload octets written at most. */
  maxBytes: number;
}

export const DEFAULT_CRASH_FIXTURE_LIMITS: CrashFixtureLimits = { maxFiles: 100, maxBytes: 16 * 1024 * 1024 };

/**
 * Keeps the datagrams that made a decoder throw, so each becomes a regression fixture:
 * `<dir>/<time>-<decoder>-<exporter>-<port>.bin` (the UDP payload) and a `.json` beside it
 * (exporter, receive time, the error and its stack). Bounded in count and bytes: a sender
 * that triggers the same bug every datagram cannot fill the disk. Writing is synchronous,
 * which is fine for something that should never happen.
 */
export class CrashFixtures {
  written = 0;
  skipped = 0;
  private bytes = 0;
  private dirReady = false;

  constructor(
    /** Empty disables writing (crashes are still counted and logged by the caller). */
    private readonly dir: string,
    private readonly limits: CrashFixtureLimits = DEFAULT_CRASH_FIXTURE_LIMITS,
  ) {}

  /** Returns the payload's path, or undefined when disabled, over the limits or unwritable. */
  record(decoder: string, payload: Uint8Array, ctx: ExporterContext, err: unknown): string | undefined {
    if (!this.dir || this.written >= this.limits.maxFiles || this.bytes + payload.length > this.limits.maxBytes) {
      this.skipped++;
      return undefined;
    }
    try {
      if (!this.dirReady) {
        ensureDir(this.dir);
        this.dirReady = true;
      }
      const stamp = new Date(ctx.receivedMs).toISOString().replace(/[:.]/g, '-');
      const base = join(this.dir, `${stamp}-${decoder}-${ctx.exporterAddr.replace(/:/g, '_')}-${ctx.exporterPort}-${this.written}`);
      writeFileSync(`${base}.bin`, payload);
      const e = err instanceof Error ? { message: err.message, stack: err.stack ?? null } : { message: String(err), stack: null };
      writeFileSync(
        `${base}.json`,
        `${JSON.stringify({ decoder, exporter: ctx.exporterAddr, port: ctx.exporterPort, receivedMs: ctx.receivedMs, octets: payload.length, error: e }, null, 2)}\n`,
      );
      this.written++;
      this.bytes += payload.length;
      return `${base}.bin`;
    } catch {
      this.skipped++;
      return undefined;
    }
  }
}
