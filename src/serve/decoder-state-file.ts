import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  flowStateFrom,
  type FlowDecoderLimits,
  type FlowDecoderState,
  parseFlowState,
  type PersistedFlowState,
} from '../../decoders/ipfix/index.js';

/**
 * The decoder state file: templates and sampling options kept across restarts. A missing
 * file is a first start; an unreadable one is reported and ignored (the exporters' next
 * template refresh rebuilds everything), never a reason not to start. The document is
 * checked here; `restore` also builds the decoder state from it (decoding on this thread),
 * otherwise the decode workers build their shares.
 */
export function loadDecoderState(
  path: string,
  limits: Partial<FlowDecoderLimits>,
  restore: boolean,
): { state: FlowDecoderState | undefined; document: PersistedFlowState | undefined; warning: string | undefined } {
  if (!path) return { state: undefined, document: undefined, warning: undefined };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { state: undefined, document: undefined, warning: undefined };
  }
  try {
    const document = parseFlowState(JSON.parse(text));
    return { state: restore ? flowStateFrom(document, limits) : undefined, document, warning: undefined };
  } catch (err) {
    return { state: undefined, document: undefined, warning: `ignoring decoder state ${path}: ${(err as Error).message}` };
  }
}

/** Writes the state atomically (temp file + rename): a crash never leaves half a file. */
export function saveDecoderState(path: string, document: PersistedFlowState): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(document));
  renameSync(tmp, path);
}

export interface DecoderStateStatus {
  /** False after a failed save, until a save succeeds. */
  ok: boolean;
  lastError: string | undefined;
  lastErrorMs: number | undefined;
  lastSavedMs: number | undefined;
}

/** The state file with the outcome of its saves, for /health (a failed save is a degraded collector, not a WARN). */
export class DecoderStateFile {
  private s: DecoderStateStatus = { ok: true, lastError: undefined, lastErrorMs: undefined, lastSavedMs: undefined };

  constructor(readonly path: string) {}

  /** Saves the document (throws as saveDecoderState does, after recording the failure). */
  save(document: PersistedFlowState, nowMs: number): void {
    try {
      saveDecoderState(this.path, document);
    } catch (err) {
      this.failed(err, nowMs);
      throw err;
    }
    this.s = { ...this.s, ok: true, lastSavedMs: nowMs };
  }

  /** Records a save that failed before the file was reached (building the document). */
  failed(err: unknown, nowMs: number): void {
    this.s = { ...this.s, ok: false, lastError: err instanceof Error ? err.message : String(err), lastErrorMs: nowMs };
  }

  status(): DecoderStateStatus {
    return { ...this.s };
  }
}
