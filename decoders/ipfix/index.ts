/**
 * IPFIX (RFC 7011), NetFlow v9 (RFC 3954) and NetFlow v5 decoding into FlowRecords.
 *
 * Pure: bytes + caller-owned state in, records + per-datagram stats + errors out. No
 * sockets, timers or logs; the receive time is passed in, so buffering and aging follow the
 * caller's clock (the capture's clock when replaying a pcap).
 */
import { DecodeError } from '../errors.js';
import { ieName } from './ie.js';
import { decodeIpfix, IPFIX_VERSION } from './ipfix.js';
import { decodeNetflow5, NETFLOW5_VERSION } from './netflow5.js';
import { decodeNetflow9, NETFLOW9_VERSION } from './netflow9.js';
import type { FlowDecoderState } from './state.js';
import { type FlowDecodeContext, type FlowDecodeOptions, type FlowDecodeResult, newResult, resetStats } from './types.js';

export { createFlowDecoderState, DEFAULT_LIMITS, EVICTION_REASONS, recountStateBytes, STATE_COST } from './state.js';
export type { EvictionReason } from './state.js';
export {
  FLOW_STATE_VERSION,
  flowStateFrom,
  parseFlowState,
  restoreFlowState,
  snapshotFlowState,
  type PersistedFlowState,
} from './persist.js';
export type { FlowDecoderLimits, FlowDecoderState } from './state.js';
export type { FlowDecodeContext, FlowDecodeOptions, FlowDecodeResult, FlowDecodeStats } from './types.js';
export { newResult } from './types.js';
export type { SamplingConfig } from './sampling.js';

/**
 * Decodes one UDP payload, dispatching on the 16-bit version (5, 9 or 10). Never throws
 * for bad input: every problem is a DecodeError in `errors` (and `stopped` tells whether
 * decoding ended early). Anything else escaping is a bug.
 *
 * `reuse`: a result (from newResult()) to decode into instead of a new one, for the daemon's
 * per-datagram path; its previous contents are gone after the call.
 */
export function decodeFlowDatagram(
  bytes: Uint8Array,
  ctx: FlowDecodeContext,
  state: FlowDecoderState,
  opts: FlowDecodeOptions = {},
  reuse?: FlowDecodeResult,
): FlowDecodeResult {
  // Scratch state (the shared sink record, the set context, position tables) is module
  // level: a sink calling back in would overwrite the record and context of the outer call.
  if (busy) throw new Error('decodeFlowDatagram called from its own onRecord sink (the decoder is not re-entrant)');
  busy = true;
  const result = reuse === undefined ? newResult() : resetResult(reuse);
  try {
    if (bytes.length < 2) throw new DecodeError('truncated', `datagram of ${bytes.length} octets`, 0);
    const version = (bytes[0]! << 8) | bytes[1]!;
    if (version === IPFIX_VERSION) decodeIpfix(bytes, ctx, state, opts, result);
    else if (version === NETFLOW9_VERSION) decodeNetflow9(bytes, ctx, state, opts, result);
    else if (version === NETFLOW5_VERSION) decodeNetflow5(bytes, ctx, state, opts, result);
    else throw new DecodeError('bad-version', `version ${version} is not NetFlow v5/v9 or IPFIX`, 0);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    result.errors.push(e);
    result.stopped = true;
  } finally {
    busy = false;
  }
  return result;
}

/**
 * A result to decode the next datagram into, without allocating: the counters are zeroed in
 * place, and the record and error arrays are replaced only when the previous datagram filled
 * them (a caller may still hold those).
 */
function resetResult(r: FlowDecodeResult): FlowDecodeResult {
  if (r.records.length > 0) r.records = [];
  if (r.errors.length > 0) r.errors = [];
  r.stopped = false;
  resetStats(r.stats);
  return r;
}

/** True while decodeFlowDatagram runs (see the re-entrancy check there). */
let busy = false;

/** JSON-ready view of the state for the exporters API: templates, sampling, sequence, buffer. */
export interface FlowStateSummary {
  sessions: Array<{
    exporter: string;
    lastSeenMs: number;
    pendingSets: number;
    pendingBytes: number;
    domains: Array<{
      domain: number;
      templates: Array<{ id: number; kind: 'data' | 'options'; protocol: string; fields: string[] }>;
      withdrawn: number[];
      sequence: { expected: number; lost: number; late: number; resets: number; gaps: number };
      sampling: SamplingSummary;
    }>;
  }>;
  /** Sampling learnt per exporter address and domain (any source port). */
  exporters: Array<{ exporterAddr: string; domain: number; sampling: SamplingSummary }>;
  totals: FlowDecoderState['totals'];
}

export interface SamplingSummary {
  domainRate: number | null;
  samplers: Record<string, number>;
  selectors: Record<string, number>;
  interfaces: Record<string, number>;
  interfaceNames: Record<string, string>;
  systemInitMs: number | null;
}

function samplingSummary(t: import('./sampling.js').SamplingTable): SamplingSummary {
  return {
    domainRate: t.domainRate > 0 ? t.domainRate : null,
    samplers: Object.fromEntries(t.samplers),
    selectors: Object.fromEntries(t.selectors),
    interfaces: Object.fromEntries(t.interfaces),
    interfaceNames: Object.fromEntries(t.interfaceNames),
    systemInitMs: t.systemInitMs >= 0 ? t.systemInitMs : null,
  };
}

export function summarizeFlowState(state: FlowDecoderState): FlowStateSummary {
  return {
    sessions: [...state.sessions.values()].map((s) => ({
      exporter: s.key,
      lastSeenMs: s.lastSeenMs,
      pendingSets: s.pending.length,
      pendingBytes: s.pendingBytes,
      domains: [...s.domains.values()].map((d) => ({
        domain: d.domain,
        templates: [...d.templates.values()].map((t) => ({
          id: t.id,
          kind: t.kind,
          protocol: t.protocol,
          fields: t.fields.map((f) => `${f.scope ? 'scope:' : ''}${ieName(f.id, f.pen)}/${f.length}`),
        })),
        withdrawn: [...d.withdrawn.keys()],
        sequence: { ...d.sequence },
        sampling: samplingSummary(d.sampling),
      })),
    })),
    exporters: [...state.exporterSampling.entries()].map(([k, t]) => {
      const bar = k.lastIndexOf('|');
      return { exporterAddr: k.slice(0, bar), domain: Number(k.slice(bar + 1)), sampling: samplingSummary(t) };
    }),
    totals: { ...state.totals },
  };
}
