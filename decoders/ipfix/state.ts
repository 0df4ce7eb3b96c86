/**
 * The decoder's memory between datagrams: templates, buffered early data, sequence numbers
 * and sampling parameters. It is plain data owned by the caller (no globals, no timers), so a
 * worker that owns one exporter's state can inspect it for the REST API, persist it and
 * restore it. Every collection in it is capped by `FlowDecoderLimits`.
 *
 * Keys: RFC 7011 section 8 scopes templates to (transport session, observation domain,
 * template id); the transport session of a UDP exporter is its address and port. Sampling
 * parameters are additionally kept per (exporter address, domain), because exporters such as
 * softflowd or routers with several export processes send options from another source port
 * than the data they describe.
 */
import { sessionKey } from '../record.js';
import type { DecodePlan, TemplateField } from './plan.js';
import type { SamplingTable } from './sampling.js';
import type { SequenceState } from './sequence.js';

export interface FlowDecoderLimits {
  /** Transport sessions remembered; the least recently seen one is forgotten beyond this. */
  maxSessions: number;
  /** Templates (live or withdrawn markers) per transport session, all domains together. */
  maxTemplatesPerSession: number;
  /** Observation domains per transport session. */
  maxDomainsPerSession: number;
  /** Field specifiers per template (RFC 7011 allows ~16k; no real exporter needs 512). */
  maxFieldsPerTemplate: number;
  /** Bytes of data sets held per session while waiting for their template. */
  maxPendingBytes: number;
  /** Age (by receive time) after which held data sets are evicted. */
  maxPendingAgeMs: number;
  /** Sampler / selector / interface entries per sampling table. */
  maxSamplingEntries: number;
  /**
   * RFC 7011 8.4: a template not refreshed within this time (by receive time) expires and
   * its data is held as if the template were missing. 0 disables expiry.
   */
  templateLifetimeMs: number;
}

export const DEFAULT_LIMITS: Readonly<FlowDecoderLimits> = {
  maxSessions: 10_000,
  maxTemplatesPerSession: 1024,
  maxDomainsPerSession: 256,
  maxFieldsPerTemplate: 512,
  // The one default of `serve` and `ingest` (config decoder.maxBufferedBytesPerSession). It
  // only bridges the wait for a template refresh (templates survive restarts in the state
  // file), and it bounds memory: maxSessions x this is 2.5 GiB at worst, 10 GiB at 1 MiB.
  maxPendingBytes: 256 * 1024,
  // Exporters resend templates at least every few minutes over UDP (RFC 7011 10.3.6);
  // data older than this is not worth keeping in the hope of a template.
  maxPendingAgeMs: 60_000,
  maxSamplingEntries: 1024,
  templateLifetimeMs: 0,
};

export interface TemplateEntry {
  id: number;
  kind: 'data' | 'options';
  protocol: 'ipfix' | 'netflow9';
  fields: TemplateField[];
  plan: DecodePlan;
  /** Receive time of the datagram that (re)defined it. */
  receivedMs: number;
  /**
   * The template record exactly as the exporter sent it (template id to last field
   * specifier), so the periodic refresh of an unchanged template is recognised by a byte
   * comparison without parsing it (sets.ts, refreshTemplates). Undefined for templates
   * restored from disk until their first refresh.
   */
  raw: Uint8Array | undefined;
}

export interface DomainState {
  domain: number;
  /** Key of this exporter address and domain in FlowDecoderState.exporterSampling. */
  exporterKey: string;
  templates: Map<number, TemplateEntry>;
  /** Ids withdrawn (RFC 7011 8.1) and not redefined since: id -> receive time of withdrawal. */
  withdrawn: Map<number, number>;
  sequence: SequenceState;
  /** Sampling parameters learnt on exactly this session and domain. */
  sampling: SamplingTable;
}

/** A data set that arrived before its template, kept with what is needed to decode it later. */
export interface PendingSet {
  protocol: 'ipfix' | 'netflow9';
  domain: number;
  templateId: number;
  /** A copy of the set body (after the set header): the datagram buffer may be reused. */
  body: Uint8Array;
  receivedMs: number;
  /** Header export time (seconds) and, for v9, sysUptime (ms), for time conversion. */
  exportSecs: number;
  sysUptimeMs: number;
}

export interface SessionState {
  key: string;
  address: string;
  port: number;
  lastSeenMs: number;
  /** Live templates plus withdrawn markers, across domains (capped). */
  templateCount: number;
  domains: Map<number, DomainState>;
  pending: PendingSet[];
  pendingBytes: number;
}

export interface FlowDecoderState {
  limits: FlowDecoderLimits;
  sessions: Map<string, SessionState>;
  /** Sampling tables per `${exporterAddress}|${domain}` (any source port). */
  exporterSampling: Map<string, SamplingTable>;
  /**
   * The session of the previous datagram: a memo that spares building and hashing the
   * session key when one exporter sends many datagrams in a row. Not part of the state's
   * meaning (drop it when serializing).
   */
  last: SessionState | undefined;
  /** Lifetime counters, for metrics and the exporters API. */
  totals: {
    sessionsEvicted: number;
    pendingEvicted: number;
    unknownSamplingRecords: number;
  };
}

export function createFlowDecoderState(limits: Partial<FlowDecoderLimits> = {}): FlowDecoderState {
  return {
    limits: { ...DEFAULT_LIMITS, ...limits },
    sessions: new Map(),
    exporterSampling: new Map(),
    last: undefined,
    totals: { sessionsEvicted: 0, pendingEvicted: 0, unknownSamplingRecords: 0 },
  };
}

/**
 * The session for an exporter address and port, created on first sight. Beyond
 * `maxSessions` the least recently seen session is forgotten (templates and all), which is
 * what an exporter that went away would have cost us anyway; the scan is O(sessions) but
 * only runs when a new session pushes the table over its cap.
 */
export function getSession(state: FlowDecoderState, address: string, port: number, nowMs: number): SessionState {
  const last = state.last;
  if (last !== undefined && last.port === port && last.address === address) {
    if (nowMs > last.lastSeenMs) last.lastSeenMs = nowMs;
    return last;
  }
  const key = sessionKey(address, port);
  let s = state.sessions.get(key);
  if (s === undefined) {
    if (state.sessions.size >= state.limits.maxSessions) {
      let oldestKey: string | undefined;
      let oldest = Infinity;
      for (const [k, v] of state.sessions) {
        if (v.lastSeenMs < oldest) {
          oldest = v.lastSeenMs;
          oldestKey = k;
        }
      }
      if (oldestKey !== undefined) {
        state.sessions.delete(oldestKey);
        state.last = undefined;
        state.totals.sessionsEvicted++;
      }
    }
    s = { key, address, port, lastSeenMs: nowMs, templateCount: 0, domains: new Map(), pending: [], pendingBytes: 0 };
    state.sessions.set(key, s);
  }
  if (nowMs > s.lastSeenMs) s.lastSeenMs = nowMs;
  state.last = s;
  return s;
}
