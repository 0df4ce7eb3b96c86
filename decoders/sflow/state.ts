/**
 * What the sFlow decoder remembers between datagrams: sequence numbers (to count lost
 * datagrams and samples) and the sampling pool / drop counters (to show the effective
 * sampling rate and agent-side drops). Plain data, so it can be inspected by the API and
 * persisted later; every map is bounded so a flood of spoofed agents or source ids cannot
 * grow memory without limit.
 *
 * Keys follow the spec's own scoping (sFlow v5 section 5, struct sample_datagram_v5 and
 * flow_sample): the datagram sequence number is per (agent address, sub-agent id); a sample
 * sequence number is per data source within that sub-agent, counted separately for flow and
 * counter samples.
 */

export interface SflowStateLimits {
  /** (agent, sub-agent) pairs remembered; the oldest-inserted is forgotten past this. */
  maxAgents: number;
  /** Data sources remembered across all agents; the oldest-inserted is forgotten past this. */
  maxSources: number;
}

export const DEFAULT_SFLOW_STATE_LIMITS: Readonly<SflowStateLimits> = { maxAgents: 4096, maxSources: 65536 };

/** Sequence bookkeeping shared by agents (datagrams) and sources (samples). */
export interface SequenceTrack {
  /** Last sequence number seen (valid when seen > 0). */
  last: number;
  /** Datagrams or samples seen. */
  seen: number;
  /** Sum of the numbers skipped between consecutive arrivals: lost (or still in flight). */
  lost: number;
  /**
   * Times the sequence went backwards or jumped by 2^31 or more: an agent restart or a
   * reordered datagram. Not counted as loss, since neither is one.
   */
  resets: number;
  /** The same number again (a duplicated datagram). */
  duplicates: number;
}

export interface SflowAgentEntry extends SequenceTrack {
  agent: string;
  subAgent: number;
  /** Uptime (ms) in the last datagram; a smaller one means the agent restarted. */
  uptimeMs: number;
  sources: Map<number, SflowSourceEntry>;
}

export type SflowSourceKind = 'flow' | 'counters';

export interface SflowSourceEntry extends SequenceTrack {
  kind: SflowSourceKind;
  sourceIdType: number;
  sourceIdIndex: number;
  /** Latest sampling_rate, sample_pool and drops as sent (flow sources only; 0 otherwise). */
  samplingRate: number;
  samplePool: number;
  drops: number;
  /**
   * Growth of sample_pool and drops, and the samples that growth covers, since the source
   * was first seen (restarts excluded). pooled / sampled is the effective sampling rate
   * (sFlow v5 section 3.1: sample_pool counts every packet that could have been sampled).
   */
  pooled: number;
  sampled: number;
  dropped: number;
}

export interface SflowState {
  readonly limits: SflowStateLimits;
  /** Read it freely; change it only through this module (agentEntry memoizes its last result). */
  readonly agents: Map<string, SflowAgentEntry>;
  /** Sources held across all agents (for the maxSources bound). */
  sourceCount: number;
}

export function createSflowState(limits: Partial<SflowStateLimits> = {}): SflowState {
  return { limits: { ...DEFAULT_SFLOW_STATE_LIMITS, ...limits }, agents: new Map(), sourceCount: 0 };
}

/** Effective sampling rate observed from sample_pool growth, or undefined before two samples. */
export function effectiveSamplingRate(src: SflowSourceEntry): number | undefined {
  return src.sampled > 0 ? src.pooled / src.sampled : undefined;
}

const HALF_RANGE = 0x80000000;

/**
 * Records `seq` and returns how many numbers were skipped since the previous one (0 for the
 * first, a duplicate, or a restart). Sequence numbers are 32-bit and wrap (XDR unsigned int).
 */
export function advanceSequence(t: SequenceTrack, seq: number): number {
  let lost = 0;
  if (t.seen > 0) {
    const delta = (seq - t.last) >>> 0;
    if (delta === 0) t.duplicates++;
    else if (delta < HALF_RANGE) lost = delta - 1;
    else t.resets++;
  }
  t.lost += lost;
  t.seen++;
  t.last = seq;
  return lost;
}

/**
 * The entry of the previous datagram, and its state: an agent sends many datagrams in a row,
 * and this spares building and hashing the key string for each. Cleared when that entry is
 * evicted, so it never points at an entry its state no longer holds.
 */
let lastState: SflowState | undefined;
let lastEntry: SflowAgentEntry | undefined;

/** The entry for (agent, sub-agent), created (and the oldest evicted) when new. */
export function agentEntry(state: SflowState, agent: string, subAgent: number): SflowAgentEntry {
  if (lastState === state && lastEntry !== undefined && lastEntry.subAgent === subAgent && lastEntry.agent === agent) return lastEntry;
  const key = `${agent}/${subAgent}`;
  let entry = state.agents.get(key);
  if (entry === undefined) {
    while (state.agents.size >= state.limits.maxAgents) evictOldestAgent(state);
    // Literal objects with a fixed key order (not spreads): V8 then gives every entry one
    // hidden class and the sequence code stays monomorphic.
    entry = { last: 0, seen: 0, lost: 0, resets: 0, duplicates: 0, agent, subAgent, uptimeMs: 0, sources: new Map() };
    state.agents.set(key, entry);
  }
  lastState = state;
  lastEntry = entry;
  return entry;
}

/**
 * Records a datagram's sequence number and uptime; returns the datagrams lost before it.
 * A smaller uptime than last time is a restart (the sequence restarts at 1 with it), so
 * it is counted as a reset rather than as a gap.
 */
export function recordDatagram(entry: SflowAgentEntry, seq: number, uptimeMs: number): number {
  let lost = 0;
  if (entry.seen > 0 && uptimeMs < entry.uptimeMs) {
    entry.resets++;
    entry.seen++;
    entry.last = seq;
  } else {
    lost = advanceSequence(entry, seq);
  }
  entry.uptimeMs = uptimeMs;
  return lost;
}

/**
 * Map key for a source: a small integer (a V8 Smi, so lookups do not allocate) for the
 * usual case of source type 0..3 and index below 2^26; a larger, still exact, number
 * otherwise. Kind is the lowest bit.
 */
function sourceKey(kind: SflowSourceKind, type: number, index: number): number {
  const k = kind === 'flow' ? 0 : 1;
  if (type <= 3 && index < 0x4000000) return index * 8 + type * 2 + k;
  return 0x40000000 + ((type & 0xfffff) * 0x100000000 + index) * 2 + k;
}

/** The entry for a data source of `agent`, created (and the oldest evicted) when new. */
export function sourceEntry(
  state: SflowState,
  agent: SflowAgentEntry,
  kind: SflowSourceKind,
  sourceIdType: number,
  sourceIdIndex: number,
): SflowSourceEntry {
  const key = sourceKey(kind, sourceIdType, sourceIdIndex);
  let entry = agent.sources.get(key);
  if (entry === undefined) {
    while (state.sourceCount >= state.limits.maxSources && evictOldestSource(state, agent)) {
      // evicted one; loop re-checks the bound
    }
    entry = {
      last: 0,
      seen: 0,
      lost: 0,
      resets: 0,
      duplicates: 0,
      kind,
      sourceIdType,
      sourceIdIndex,
      samplingRate: 0,
      samplePool: 0,
      drops: 0,
      pooled: 0,
      sampled: 0,
      dropped: 0,
    };
    agent.sources.set(key, entry);
    state.sourceCount++;
  }
  return entry;
}

/**
 * Records one flow sample's sequence number and counters; returns the samples lost before
 * it. Pool and drop growth is only accumulated across consecutive samples of one run of
 * the agent (not across a reset, where the counters restart from 0, nor a duplicate).
 */
export function recordFlowSample(src: SflowSourceEntry, seq: number, samplingRate: number, samplePool: number, drops: number): number {
  const resetsBefore = src.resets;
  const duplicatesBefore = src.duplicates;
  const first = src.seen === 0;
  const lost = advanceSequence(src, seq);
  if (!first && src.resets === resetsBefore && src.duplicates === duplicatesBefore) {
    src.pooled += (samplePool - src.samplePool) >>> 0;
    src.dropped += (drops - src.drops) >>> 0;
    src.sampled++;
  }
  src.samplingRate = samplingRate;
  src.samplePool = samplePool;
  src.drops = drops;
  return lost;
}

function evictOldestAgent(state: SflowState): void {
  for (const [key, entry] of state.agents) {
    if (entry === lastEntry) lastEntry = undefined;
    state.agents.delete(key);
    state.sourceCount -= entry.sources.size;
    return;
  }
}

/** Evicts the oldest source of `current`, or else of the oldest agent holding any. */
function evictOldestSource(state: SflowState, current: SflowAgentEntry): boolean {
  if (dropFirstSource(state, current)) return true;
  for (const entry of state.agents.values()) if (dropFirstSource(state, entry)) return true;
  return false;
}

function dropFirstSource(state: SflowState, agent: SflowAgentEntry): boolean {
  for (const key of agent.sources.keys()) {
    agent.sources.delete(key);
    state.sourceCount--;
    return true;
  }
  return false;
}
