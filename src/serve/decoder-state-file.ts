import { createWriteStream, readFileSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { ensureDir } from '../ensure-dir.js';
import {
  FLOW_STATE_VERSION,
  flowStateFrom,
  type FlowDecoderLimits,
  type FlowDecoderState,
  parseFlowState,
  type PersistedFlowState,
} from '../../decoders/ipfix/index.js';

/**
 * The decoder state file: templates and sampling options kept across restarts.
 *
 * Format (JSON lines, written as a stream so no string ever holds the whole state):
 *   {"format":"scitags-decoder-state","version":2,"savedMs":...}
 *   {"session":{...}}            one line per transport session, most valuable first
 *   {"exporterSampling":[k,{...}]}
 *   {"end":{"sessions":N,"exporterSampling":M,"truncated":T}}
 * Files written before budgets (one JSON document, version 1) are still read.
 */
export const STATE_FILE_FORMAT = 'scitags-decoder-state';
const STATE_FILE_VERSION = 2;
/** Sessions written per turn of the event loop (UDP reads go on in between). */
const SESSIONS_PER_TURN = 64;

/**
 * Reads a state file (either format) into a document. Throws an Error naming the problem.
 * The file is split into lines as bytes: a large file never becomes one string.
 */
export function readStateDocument(bytes: Buffer): PersistedFlowState {
  let nl = bytes.indexOf(0x0a);
  const firstEnd = nl < 0 ? bytes.length : nl;
  const first = JSON.parse(bytes.toString('utf8', 0, firstEnd)) as Record<string, unknown>;
  if (first.format !== STATE_FILE_FORMAT) return parseFlowState(first); // version 1: one document
  if (first.version !== STATE_FILE_VERSION)
    throw new Error(`decoder state file version ${String(first.version)} is not ${STATE_FILE_VERSION}`);
  const doc = { version: FLOW_STATE_VERSION, savedMs: first.savedMs, sessions: [] as unknown[], exporterSampling: [] as unknown[] };
  let ended = false;
  let start = firstEnd + 1;
  while (start < bytes.length) {
    nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl;
    if (end > start) {
      const line = JSON.parse(bytes.toString('utf8', start, end)) as Record<string, unknown>;
      if ('session' in line) doc.sessions.push(line.session);
      else if ('exporterSampling' in line) doc.exporterSampling.push(line.exporterSampling);
      else if ('end' in line) ended = true;
    }
    start = end + 1;
  }
  // Written to a temporary file and renamed: a file without its end line was cut by hand.
  if (!ended) throw new Error('decoder state file has no end line (truncated)');
  return parseFlowState(doc);
}

/**
 * Loads the state file. A missing file is a first start; an unreadable one is reported and
 * ignored (the exporters' next template refresh rebuilds everything), never a reason not to
 * start. The document is checked here; `restore` also builds the decoder state from it
 * (decoding on this thread), otherwise the decode workers build their shares.
 */
export function loadDecoderState(
  path: string,
  limits: Partial<FlowDecoderLimits>,
  restore: boolean,
): { state: FlowDecoderState | undefined; document: PersistedFlowState | undefined; warning: string | undefined } {
  if (!path) return { state: undefined, document: undefined, warning: undefined };
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return { state: undefined, document: undefined, warning: undefined };
  }
  try {
    const document = readStateDocument(bytes);
    return { state: restore ? flowStateFrom(document, limits) : undefined, document, warning: undefined };
  } catch (err) {
    return { state: undefined, document: undefined, warning: `ignoring decoder state ${path}: ${(err as Error).message}` };
  }
}

export interface DecoderStateFileStatus {
  /** False when the last save failed (the health check reads it). */
  ok: boolean;
  lastError: string | undefined;
  /** When the last successful save finished (the collector's clock). */
  lastSavedMs: number | undefined;
}

/**
 * Writes the state file: streamed line by line to a temporary file and renamed (a crash never
 * leaves half a file), asynchronously (yielding to the event loop every few sessions), never
 * two saves at once, at most `maxBytes` (sessions beyond it are left out, least valuable
 * first, and counted). Failures are kept as a status and a counter, not only logged.
 */
export class DecoderStateFile {
  failures = 0;
  saves = 0;
  /** Sessions left out of the last save by the size cap. */
  truncated = 0;
  private lastError: string | undefined;
  private lastSavedMs: number | undefined;
  private running: Promise<void> | undefined;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
    private readonly now: () => number,
  ) {}

  status(): DecoderStateFileStatus {
    return { ok: this.lastError === undefined, lastError: this.lastError, lastSavedMs: this.lastSavedMs };
  }

  /**
   * Saves the document `produce` gives. A save already running is waited for first, so the
   * last call (at shutdown) always writes the latest state. Never throws: a failure is
   * recorded (status(), failures) and returned as the error.
   */
  async save(produce: () => Promise<PersistedFlowState>): Promise<Error | undefined> {
    while (this.running) await this.running;
    let failure: Error | undefined;
    const run = (async () => {
      try {
        await this.write(await produce());
        this.saves++;
        this.lastError = undefined;
        this.lastSavedMs = this.now();
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
        this.failures++;
        this.lastError = failure.message;
      }
    })();
    this.running = run;
    await run;
    this.running = undefined;
    return failure;
  }

  private async write(doc: PersistedFlowState): Promise<void> {
    ensureDir(dirname(this.path));
    const tmp = `${this.path}.${process.pid}.tmp`;
    const out = createWriteStream(tmp);
    let streamError: Error | undefined;
    out.on('error', (err) => (streamError = err));
    const put = async (line: string): Promise<void> => {
      if (streamError) throw streamError;
      if (!out.write(line)) {
        await new Promise<void>((resolve, reject) => {
          const done = (err?: Error): void => {
            out.off('drain', done);
            out.off('error', done);
            if (err) reject(err);
            else resolve();
          };
          out.once('drain', done);
          out.once('error', done);
        });
      }
    };
    try {
      let written = 0;
      const head = `${JSON.stringify({ format: STATE_FILE_FORMAT, version: STATE_FILE_VERSION, savedMs: doc.savedMs })}\n`;
      await put(head);
      written += head.length;
      let sessions = 0;
      let truncated = 0;
      for (const s of doc.sessions) {
        const line = `${JSON.stringify({ session: s })}\n`;
        if (written + line.length > this.maxBytes) {
          truncated++;
          continue;
        }
        await put(line);
        written += line.length;
        if (++sessions % SESSIONS_PER_TURN === 0) await yieldToLoop();
      }
      let sampling = 0;
      for (const x of doc.exporterSampling) {
        const line = `${JSON.stringify({ exporterSampling: x })}\n`;
        if (written + line.length > this.maxBytes) break;
        await put(line);
        written += line.length;
        sampling++;
      }
      await put(`${JSON.stringify({ end: { sessions, exporterSampling: sampling, truncated } })}\n`);
      await new Promise<void>((resolve, reject) => {
        out.end((err?: Error | null) => (err ? reject(err) : resolve()));
      });
      if (streamError) throw streamError;
      this.truncated = truncated;
      await rename(tmp, this.path);
    } catch (err) {
      out.destroy();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }
}
