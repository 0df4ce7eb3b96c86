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
import { DecodeError } from '../errors.js';
import { sessionKey } from '../record.js';
import type { DecodePlan, TemplateField } from './plan.js';
import type { SamplingTable } from './sampling.js';
import type { SequenceState } from './sequence.js';
import type { FlowTotalsTable } from './totals.js';

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
  /**
   * One budget for everything this state holds, in estimated bytes (see STATE_COST): beyond
   * it, held data and then the least recently used idle sessions are evicted, and growth that
   * cannot be made room for is refused. Each exporter address may hold at most its fair share
   * (budget / addresses holding state, at least budget / MIN_SHARE_DIVISOR).
   */
  stateBudgetBytes: number;
  /** A session that decoded data records this recently is active: new sessions cannot evict it. */
  activeSessionMs: number;
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
  stateBudgetBytes: 256 * 1024 * 1024,
  activeSessionMs: 60_000,
};

/**
 * Estimated bytes of each piece of decoder state (V8 objects, maps, compiled plans), measured
 * with test/bench/memory.ts-style RSS probes: 1024 templates x 512 fields x 16 sessions took
 * ~1 GB, i.e. ~120 bytes per field once its plan is compiled.
 */
export const STATE_COST = {
  session: 512,
  domain: 1024,
  template: 256,
  field: 128,
  withdrawn: 64,
  /** Per held data set, on top of its body's length. */
  pendingSet: 128,
  /** Per sampling table (per exporter address and domain) and per entry in one. */
  samplingTable: 256,
  samplingEntry: 64,
  /** Per flow in a domain's total-to-delta table (totals.ts): a Map entry, its key string and object. */
  flowTotal: 192,
} as const;

/** The fair share of one exporter address is never below budget / this. */
export const MIN_SHARE_DIVISOR = 64;

/** Why decoder state was evicted (or refused): the label of scitags_decoder_evictions_total. */
export const EVICTION_REASONS = [
  /** A session forgotten because the session table (maxSessions) was full. */
  'session-lru',
  /** A session forgotten to bring the state under its byte budget. */
  'budget',
  /** A new session refused: the table is full of active sessions. */
  'session-refused',
  /** A template refused: its session holds maxTemplatesPerSession already. */
  'template-cap',
  /** A template refused: the budget or its address's fair share is used up. */
  'template-budget',
  /** Held data older than maxPendingAgeMs. */
  'pending-age',
  /** Held data beyond the per-session byte cap (maxPendingBytes). */
  'pending-cap',
  /** Held data evicted (or refused) for the global budget or the address's fair share. */
  'pending-budget',
] as const;
export type EvictionReason = (typeof EVICTION_REASONS)[number];

/** Per-address eviction counts are kept for this many addresses; the rest count as 'other'. */
export const MAX_EVICTION_ADDRESSES = 256;

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
  raw: Buffer | undefined;
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
  /** Last running totals (85/86) per flow, made when a template first needs it (totals.ts). */
  flowTotals: FlowTotalsTable | undefined;
  /**
   * Memo of FlowDecoderState.exporterSampling.get(exporterKey), valid while
   * exporterTableVersion equals the state's exporterSamplingVersion: spares a string-keyed
   * map lookup per data set (sets.ts exporterTableOf).
   */
  exporterTable: SamplingTable | undefined;
  exporterTableVersion: number;
}

export function newDomainState(address: string, domain: number, sequence: SequenceState, sampling: SamplingTable): DomainState {
  return {
    domain,
    exporterKey: `${address}|${domain}`,
    templates: new Map(),
    withdrawn: new Map(),
    sequence,
    sampling,
    flowTotals: undefined,
    exporterTable: undefined,
    exporterTableVersion: -1,
  };
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
  /** Estimated bytes this session holds (STATE_COST), pending bodies included. */
  bytes: number;
  /** Receive time of the last datagram that decoded data records; -1 if none yet. */
  lastDataMs: number;
  /** Which LRU list holds it: 0 new (no data decoded yet), 1 active (decoded data); -1 none. */
  list: -1 | 0 | 1;
  /** Intrusive LRU links (towards the most / least recently used). */
  newer: SessionState | undefined;
  older: SessionState | undefined;
}

/** An LRU list of sessions: head most recently used, tail least. */
export interface SessionList {
  head: SessionState | undefined;
  tail: SessionState | undefined;
  size: number;
}

/** What one exporter address holds, for its fair share. */
export interface AddressUsage {
  bytes: number;
  sessions: number;
}

export interface FlowDecoderState {
  limits: FlowDecoderLimits;
  /** Every session by key (lookup only; recency is kept by the two lists below). */
  sessions: Map<string, SessionState>;
  /** LRU lists: [0] sessions that have not decoded data yet, [1] sessions that have. */
  lru: [SessionList, SessionList];
  /** Sessions holding data sets, in the order they first held one (the budget's first victims). */
  pendingSessions: Set<SessionState>;
  /** Estimated bytes of the whole state (sessions plus exporterSampling). */
  bytes: number;
  /** Bytes and sessions per exporter address (fair shares). */
  addresses: Map<string, AddressUsage>;
  /** Sampling tables per `${exporterAddress}|${domain}` (any source port). */
  exporterSampling: Map<string, SamplingTable>;
  /** Changes whenever exporterSampling gains or loses a table (DomainState.exporterTable). */
  exporterSamplingVersion: number;
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
    /** Records of templates without any volume field (counted, not emitted). */
    noVolumeRecords: number;
    /** Datagrams that ended in zero padding (FlowDecodeStats.paddingOctets > 0). */
    paddedDatagrams: number;
  };
  /** Evictions and refusals per reason. */
  evictions: Record<EvictionReason, number>;
  /** Evictions and refusals per exporter address (bounded: MAX_EVICTION_ADDRESSES, then 'other'). */
  evictionsByAddress: Map<string, number>;
  /**
   * Sessions looked at while choosing what to evict, over the state's life: the LRU's cost,
   * which tests count to show it does not grow with the table.
   */
  examined: number;
}

export function newEvictionCounts(): Record<EvictionReason, number> {
  return Object.fromEntries(EVICTION_REASONS.map((r) => [r, 0])) as Record<EvictionReason, number>;
}

export function createFlowDecoderState(limits: Partial<FlowDecoderLimits> = {}): FlowDecoderState {
  return {
    limits: { ...DEFAULT_LIMITS, ...limits },
    sessions: new Map(),
    lru: [
      { head: undefined, tail: undefined, size: 0 },
      { head: undefined, tail: undefined, size: 0 },
    ],
    pendingSessions: new Set(),
    bytes: 0,
    addresses: new Map(),
    exporterSampling: new Map(),
    exporterSamplingVersion: 0,
    last: undefined,
    totals: { sessionsEvicted: 0, pendingEvicted: 0, unknownSamplingRecords: 0, noVolumeRecords: 0, paddedDatagrams: 0 },
    evictions: newEvictionCounts(),
    evictionsByAddress: new Map(),
    examined: 0,
  };
}

/** A new, empty session (not yet in the state: see addSession). */
export function newSession(address: string, port: number, nowMs: number): SessionState {
  return {
    key: sessionKey(address, port),
    address,
    port,
    lastSeenMs: nowMs,
    templateCount: 0,
    domains: new Map(),
    pending: [],
    pendingBytes: 0,
    bytes: 0,
    lastDataMs: -1,
    list: -1,
    newer: undefined,
    older: undefined,
  };
}

function unlink(state: FlowDecoderState, s: SessionState): void {
  const list = s.list;
  if (list < 0) return;
  const l = state.lru[list as 0 | 1];
  if (s.newer) s.newer.older = s.older;
  else l.head = s.older;
  if (s.older) s.older.newer = s.newer;
  else l.tail = s.newer;
  s.newer = s.older = undefined;
  s.list = -1;
  l.size--;
}

function pushHead(state: FlowDecoderState, s: SessionState, list: 0 | 1): void {
  const l = state.lru[list];
  s.list = list;
  s.newer = undefined;
  s.older = l.head;
  if (l.head) l.head.newer = s;
  else l.tail = s;
  l.head = s;
  l.size++;
}

/** Marks a session the most recently used of its list: O(1). */
export function touchSession(state: FlowDecoderState, s: SessionState): void {
  const list = s.list;
  if (list < 0 || state.lru[list as 0 | 1].head === s) return;
  unlink(state, s);
  pushHead(state, s, list as 0 | 1);
}

/** The session decoded data records: it becomes (or stays) active and most recently used. */
export function markActive(state: FlowDecoderState, s: SessionState, nowMs: number): void {
  if (nowMs > s.lastDataMs) s.lastDataMs = nowMs;
  if (s.list === 1) return;
  unlink(state, s);
  pushHead(state, s, 1);
}

/** Adds bytes (or removes, when negative) to a session, its address and the state. */
export function charge(state: FlowDecoderState, s: SessionState, delta: number): void {
  s.bytes += delta;
  state.bytes += delta;
  const a = state.addresses.get(s.address);
  if (a) a.bytes += delta;
}

/** Puts a session built elsewhere (newSession, or restored from disk) in the state. */
export function addSession(state: FlowDecoderState, s: SessionState, active: boolean): void {
  state.sessions.set(s.key, s);
  let a = state.addresses.get(s.address);
  if (!a) state.addresses.set(s.address, (a = { bytes: 0, sessions: 0 }));
  a.sessions++;
  a.bytes += s.bytes;
  state.bytes += s.bytes;
  pushHead(state, s, active ? 1 : 0);
  if (s.pending.length > 0) state.pendingSessions.add(s);
  charge(state, s, STATE_COST.session);
}

/** Forgets a session (templates and all), counting why. */
export function removeSession(state: FlowDecoderState, s: SessionState, reason: EvictionReason): void {
  if (!state.sessions.delete(s.key)) return;
  unlink(state, s);
  state.pendingSessions.delete(s);
  state.bytes -= s.bytes;
  const a = state.addresses.get(s.address);
  if (a) {
    a.bytes -= s.bytes;
    if (--a.sessions === 0) state.addresses.delete(s.address);
  }
  s.bytes = 0;
  if (state.last === s) state.last = undefined;
  state.totals.sessionsEvicted++;
  countEviction(state, s.address, reason, 1);
}

export function countEviction(state: FlowDecoderState, address: string, reason: EvictionReason, n: number): void {
  if (n <= 0) return;
  state.evictions[reason] += n;
  const m = state.evictionsByAddress;
  const key = m.has(address) || m.size < MAX_EVICTION_ADDRESSES ? address : 'other';
  m.set(key, (m.get(key) ?? 0) + n);
}

/** The most bytes one exporter address may hold now. */
export function fairShare(state: FlowDecoderState): number {
  const budget = state.limits.stateBudgetBytes;
  return Math.max(Math.floor(budget / MIN_SHARE_DIVISOR), Math.floor(budget / Math.max(1, state.addresses.size)));
}

/**
 * The least recently used session that may be evicted to make room for `forSession`'s
 * growth (or a new session): first the sessions that never decoded data, then active-list
 * sessions idle for activeSessionMs. Never `keep`. O(1): looks at most at two sessions per list.
 */
function victim(state: FlowDecoderState, keep: SessionState | undefined, nowMs: number): SessionState | undefined {
  const fresh = state.lru[0];
  let v = fresh.tail;
  state.examined++;
  if (v === keep && v !== undefined) {
    v = v.newer;
    state.examined++;
  }
  if (v !== undefined) return v;
  v = state.lru[1].tail;
  state.examined++;
  if (v === keep && v !== undefined) {
    v = v.newer;
    state.examined++;
  }
  if (v !== undefined && nowMs - v.lastDataMs > state.limits.activeSessionMs) return v;
  return undefined;
}

/**
 * The session for an exporter address and port, created on first sight. Lookup, touch and
 * eviction are O(1): sessions sit in two LRU lists (new, active). Beyond `maxSessions`
 * the least recently used new session is forgotten, else the least recently used active
 * one idle for activeSessionMs; when every session is active, the new one is refused
 * (DecodeError 'limit-exceeded', counted as 'session-refused'), so a flood of spoofed new
 * sessions cannot push out the exporters that are sending data.
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
      const v = victim(state, undefined, nowMs);
      if (v === undefined) {
        countEviction(state, address, 'session-refused', 1);
        throw new DecodeError('limit-exceeded', `session ${key}: all ${state.limits.maxSessions} sessions are active`);
      }
      removeSession(state, v, 'session-lru');
    }
    s = newSession(address, port, nowMs);
    addSession(state, s, false);
    makeRoom(state, s, 0, nowMs);
  } else touchSession(state, s);
  if (nowMs > s.lastSeenMs) s.lastSeenMs = nowMs;
  state.last = s;
  return s;
}

/** Drops held sets, oldest holder first, until `need` more bytes fit; returns sets dropped. */
function evictPending(state: FlowDecoderState, need: number, keep: SessionState | undefined): number {
  let dropped = 0;
  for (const s of state.pendingSessions) {
    state.examined++;
    if (state.bytes + need <= state.limits.stateBudgetBytes) break;
    if (s === keep) continue;
    let n = 0;
    while (s.pending.length > 0 && state.bytes + need > state.limits.stateBudgetBytes) {
      const e = s.pending.shift()!;
      s.pendingBytes -= e.body.length;
      charge(state, s, -(e.body.length + STATE_COST.pendingSet));
      n++;
    }
    if (s.pending.length === 0) state.pendingSessions.delete(s);
    state.totals.pendingEvicted += n;
    countEviction(state, s.address, 'pending-budget', n);
    dropped += n;
  }
  return dropped;
}

/**
 * Makes room for `need` more bytes in session `s` (already in the state): true when they
 * fit its address's fair share and, after evicting held data and then (`evictSessions`)
 * least recently used evictable sessions (never `s`), the budget. False means the caller
 * refuses the growth.
 */
export function makeRoom(state: FlowDecoderState, s: SessionState, need: number, nowMs: number, evictSessions = true): boolean {
  const budget = state.limits.stateBudgetBytes;
  const a = state.addresses.get(s.address);
  if (need > 0 && a !== undefined && a.bytes + need > fairShare(state)) return false;
  if (state.bytes + need <= budget) return true;
  if (state.pendingSessions.size > 0) evictPending(state, need, s);
  while (state.bytes + need > budget) {
    if (!evictSessions) return false;
    const v = victim(state, s, nowMs);
    if (v === undefined) return false;
    removeSession(state, v, 'budget');
  }
  return true;
}

/** Estimated bytes of one sampling table (STATE_COST). */
export function samplingBytes(t: SamplingTable): number {
  return (
    STATE_COST.samplingTable + STATE_COST.samplingEntry * (t.samplers.size + t.selectors.size + t.interfaces.size + t.interfaceNames.size)
  );
}

/**
 * The state's bytes counted from scratch (what the incremental accounting must equal):
 * for tests and the memory bench, O(state).
 */
export function recountStateBytes(state: FlowDecoderState): number {
  let total = 0;
  for (const s of state.sessions.values()) {
    total += STATE_COST.session;
    for (const d of s.domains.values()) {
      total += STATE_COST.domain + samplingBytes(d.sampling);
      for (const t of d.templates.values()) total += STATE_COST.template + t.fields.length * STATE_COST.field;
      total += d.withdrawn.size * STATE_COST.withdrawn;
      total += (d.flowTotals?.size ?? 0) * STATE_COST.flowTotal;
    }
    for (const p of s.pending) total += p.body.length + STATE_COST.pendingSet;
  }
  for (const t of state.exporterSampling.values()) total += samplingBytes(t);
  return total;
}
