import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type FlowDecoderLimits, type FlowDecoderState, type PersistedFlowState, restoreFlowState } from '../../decoders/ipfix/index.js';

/**
 * The decoder state file: templates and sampling options kept across restarts. A missing
 * file is a first start; an unreadable one is reported and ignored (the exporters' next
 * template refresh rebuilds everything), never a reason not to start.
 */
export function loadDecoderState(
  path: string,
  limits: Partial<FlowDecoderLimits>,
): { state: FlowDecoderState | undefined; document: PersistedFlowState | undefined; warning: string | undefined } {
  if (!path) return { state: undefined, document: undefined, warning: undefined };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { state: undefined, document: undefined, warning: undefined };
  }
  try {
    const document = JSON.parse(text) as PersistedFlowState;
    // Restoring validates the document; the workers get their shares of the checked one.
    return { state: restoreFlowState(document, limits), document, warning: undefined };
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
