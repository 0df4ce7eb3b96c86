/**
 * The marking check (issue 13, "Correlate"): flows seen both as fireflies and as flow records
 * with the same 5-tuple, and whether the packets carried the (community, activity) the
 * transfer host declared. Hosts whose marking is missing or wrong show up per experiment and
 * site pair.
 *
 * Shape. The main thread sees every accepted firefly and keeps the live (and recently ended)
 * flows' 5-tuples (MarkingSource); it sends changes as plain data to whoever decodes flow
 * records (the inline enricher, or every decode worker: records are sharded by exporter, not
 * by flow). There a MarkingIndex answers, per flow record, whether a firefly flow has its
 * 5-tuple (in either direction), and MarkingCounts sums the outcome. Workers ship their
 * counts with their partial sums; the main thread adds them up.
 *
 * Per record this costs nothing while no firefly flow is known, and otherwise one hash over
 * the address bytes and ports (no string) and one Map probe.
 */
import type { Firefly } from '../../decoders/firefly/types.js';
import type { FlowRecord } from '../../decoders/record.js';
import { activityOf, communityOf } from '../../decoders/scitags/flowlabel.js';
import { addressWords } from '../sites/prefix-table.js';

/** What a flow record said compared with its firefly flow. */
export type MarkingOutcome = 'agree' | 'mismatch' | 'unmarked' | 'notExported' | 'ipv4';
export const MARKING_OUTCOMES: readonly MarkingOutcome[] = ['agree', 'mismatch', 'unmarked', 'notExported', 'ipv4'];

/** IANA protocol numbers of the firefly `protocol` values. */
const PROTOCOL_NUMBER = { tcp: 6, udp: 17 } as const;

/** One firefly flow as plain data (it crosses to decode workers). */
export interface MarkedFlow {
  /** Canonical 5-tuple text, both directions alike (identity for updates). */
  id: string;
  proto: number;
  /** Address bytes (4 or 16 each) and ports of the two ends. */
  a: number[];
  portA: number;
  b: number[];
  portB: number;
  experimentId: number;
  activityId: number;
  srcSite: string;
  dstSite: string;
}

export interface MarkingUpdate {
  upserts: MarkedFlow[];
  deletes: string[];
}

/** FNV-1a over an endpoint (address bytes, then the port), so both directions hash alike once summed. */
function endpointHash(bytes: ArrayLike<number>, at: number, len: number, port: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ bytes[at + i]!, 0x01000193);
  h = Math.imul(h ^ (port >>> 8), 0x01000193);
  h = Math.imul(h ^ (port & 0xff), 0x01000193);
  return h >>> 0;
}

function flowHash(h1: number, h2: number, proto: number): number {
  return ((h1 + h2) ^ Math.imul(proto, 0x9e3779b1)) >>> 0;
}

function bytesOf(words: readonly number[]): number[] {
  const out: number[] = [];
  for (const w of words) out.push(w >>> 24, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff);
  return out;
}

/** A firefly's flow as a MarkedFlow, or undefined when an address cannot be read. */
export function markedFlowOf(f: Firefly, srcSite: string, dstSite: string): MarkedFlow | undefined {
  const s = addressWords(f.srcAddr);
  const d = addressWords(f.dstAddr);
  if (!s || !d || s.family !== d.family) return undefined;
  const proto = PROTOCOL_NUMBER[f.protocol];
  const one = `${f.srcAddr}#${f.srcPort}`;
  const two = `${f.dstAddr}#${f.dstPort}`;
  return {
    id: `${proto}|${one < two ? `${one}|${two}` : `${two}|${one}`}`,
    proto,
    a: bytesOf(s.words),
    portA: f.srcPort,
    b: bytesOf(d.words),
    portB: f.dstPort,
    experimentId: f.experimentId,
    activityId: f.activityId,
    srcSite,
    dstSite,
  };
}

/** The per-record side: 5-tuple -> firefly flow. */
export class MarkingIndex {
  private readonly byHash = new Map<number, MarkedFlow[]>();
  private readonly byId = new Map<string, { flow: MarkedFlow; hash: number }>();

  get size(): number {
    return this.byId.size;
  }

  apply(update: MarkingUpdate): void {
    for (const id of update.deletes) this.remove(id);
    for (const flow of update.upserts) {
      this.remove(flow.id);
      const hash = flowHash(
        endpointHash(flow.a, 0, flow.a.length, flow.portA),
        endpointHash(flow.b, 0, flow.b.length, flow.portB),
        flow.proto,
      );
      this.byId.set(flow.id, { flow, hash });
      const list = this.byHash.get(hash);
      if (list) list.push(flow);
      else this.byHash.set(hash, [flow]);
    }
  }

  private remove(id: string): void {
    const held = this.byId.get(id);
    if (!held) return;
    this.byId.delete(id);
    const list = this.byHash.get(held.hash)!;
    const rest = list.filter((f) => f.id !== id);
    if (rest.length === 0) this.byHash.delete(held.hash);
    else this.byHash.set(held.hash, rest);
  }

  /** The firefly flow with the record's 5-tuple in either direction, if any. */
  find(rec: FlowRecord): MarkedFlow | undefined {
    const b = rec.addrBytes;
    const len = rec.addrLen;
    const sp = rec.srcPort;
    const dp = rec.dstPort;
    const proto = rec.ipProtocol;
    if (b === undefined || len === 0 || sp === undefined || dp === undefined || (proto !== 6 && proto !== 17)) return undefined;
    const hash = flowHash(endpointHash(b, rec.srcAddrAt, len, sp), endpointHash(b, rec.dstAddrAt, len, dp), proto);
    const list = this.byHash.get(hash);
    if (list === undefined) return undefined;
    for (const f of list) {
      if (f.proto !== proto || f.a.length !== len) continue;
      if (
        (f.portA === sp && f.portB === dp && same(f.a, b, rec.srcAddrAt) && same(f.b, b, rec.dstAddrAt)) ||
        (f.portA === dp && f.portB === sp && same(f.a, b, rec.dstAddrAt) && same(f.b, b, rec.srcAddrAt))
      ) {
        return f;
      }
    }
    return undefined;
  }
}

function same(want: readonly number[], b: Uint8Array, at: number): boolean {
  for (let i = 0; i < want.length; i++) if (b[at + i] !== want[i]) return false;
  return true;
}

/** What a record of a firefly flow says: the outcome of the check. */
export function outcomeOf(rec: FlowRecord, flow: MarkedFlow): MarkingOutcome {
  if (rec.addrLen === 4) return 'ipv4';
  const label = rec.flowLabel;
  if (label === undefined) return 'notExported';
  if (label === 0) return 'unmarked';
  return communityOf(label) === flow.experimentId && activityOf(label) === flow.activityId ? 'agree' : 'mismatch';
}

/** One counted key: the firefly's experiment, activity and sites, and the outcome. */
export interface MarkingCount {
  experimentId: number;
  activityId: number;
  srcSite: string;
  dstSite: string;
  outcome: MarkingOutcome;
  records: number;
  /** Scaled by the sampling rate. */
  bytes: number;
  /** 'mismatch' only: the pairs the packets carried instead ("community/activity" -> records), at most MAX_MISMATCH_PAIRS. */
  carried: Record<string, number>;
}

/** Distinct keys counted; further keys fold into sites 'other' (the experiment and outcome kept). */
export const MAX_MARKING_KEYS = 10_000;
const MAX_MISMATCH_PAIRS = 8;

/** Outcome sums (per worker, and the main thread's totals since start). */
export class MarkingCounts {
  private readonly counts = new Map<string, MarkingCount>();
  folded = 0;

  count(flow: MarkedFlow, outcome: MarkingOutcome, rec: FlowRecord): void {
    const c = this.entry(flow.experimentId, flow.activityId, flow.srcSite, flow.dstSite, outcome);
    c.records++;
    c.bytes += rec.bytes * rec.samplingRate;
    if (outcome === 'mismatch') {
      const pair = `${communityOf(rec.flowLabel!)}/${activityOf(rec.flowLabel!)}`;
      if (pair in c.carried || Object.keys(c.carried).length < MAX_MISMATCH_PAIRS) c.carried[pair] = (c.carried[pair] ?? 0) + 1;
    }
  }

  private entry(experimentId: number, activityId: number, srcSite: string, dstSite: string, outcome: MarkingOutcome): MarkingCount {
    let key = `${experimentId}|${activityId}|${srcSite}|${dstSite}|${outcome}`;
    let c = this.counts.get(key);
    if (c) return c;
    if (this.counts.size >= MAX_MARKING_KEYS) {
      this.folded++;
      srcSite = dstSite = 'other';
      key = `${experimentId}|${activityId}|other|other|${outcome}`;
      c = this.counts.get(key);
      if (c) return c;
    }
    c = { experimentId, activityId, srcSite, dstSite, outcome, records: 0, bytes: 0, carried: {} };
    this.counts.set(key, c);
    return c;
  }

  /** Everything counted since the last take (workers ship it), and forgets it. */
  take(): MarkingCount[] {
    const out = [...this.counts.values()];
    this.counts.clear();
    return out;
  }

  add(counts: readonly MarkingCount[]): void {
    for (const c of counts) {
      const e = this.entry(c.experimentId, c.activityId, c.srcSite, c.dstSite, c.outcome);
      e.records += c.records;
      e.bytes += c.bytes;
      for (const [pair, n] of Object.entries(c.carried)) {
        if (pair in e.carried || Object.keys(e.carried).length < MAX_MISMATCH_PAIRS) e.carried[pair] = (e.carried[pair] ?? 0) + n;
      }
    }
  }

  list(): MarkingCount[] {
    return [...this.counts.values()];
  }
}

/**
 * The main thread's side: the firefly flows to check records against, from every accepted
 * firefly. A live flow is held until `liveSeconds` after its last firefly (the flow table's
 * timeout); an ended one `endedSeconds` more (routers export a flow's last records after it
 * ends, and records later than the aggregator's late window are not counted anyway). At most
 * `maxFlows` are held: the least recently updated goes first, counted in `evicted`. Changes
 * accumulate until takeUpdate().
 */
export class MarkingSource {
  private readonly flows = new Map<string, { flow: MarkedFlow; expiresMs: number }>();
  private upserts = new Map<string, MarkedFlow>();
  private deletes = new Set<string>();
  evicted = 0;
  /** Flows the record path has been sent (held as of the last takeUpdate()). */
  published = 0;

  constructor(private readonly limits: { maxFlows: number; liveSeconds: number; endedSeconds: number }) {}

  get size(): number {
    return this.flows.size;
  }

  accept(flow: MarkedFlow, receivedMs: number, ended: boolean): void {
    const held = this.flows.get(flow.id);
    // Map order is update order: re-inserting moves the flow to the back.
    if (held) this.flows.delete(flow.id);
    const changed = !held || held.flow.experimentId !== flow.experimentId || held.flow.activityId !== flow.activityId;
    const expiresMs = receivedMs + (ended ? this.limits.endedSeconds : this.limits.liveSeconds) * 1000;
    this.flows.set(flow.id, { flow: changed ? flow : held.flow, expiresMs });
    if (changed) {
      this.upserts.set(flow.id, flow);
      this.deletes.delete(flow.id);
    }
    while (this.flows.size > this.limits.maxFlows) {
      this.drop(this.flows.keys().next().value!);
      this.evicted++;
    }
  }

  /** Drops the flows whose hold ran out at `nowMs` (one pass; called once a second). */
  tick(nowMs: number): void {
    for (const [id, held] of this.flows) if (held.expiresMs <= nowMs) this.drop(id);
  }

  private drop(id: string): void {
    this.flows.delete(id);
    this.upserts.delete(id);
    this.deletes.add(id);
  }

  /** The changes since the last call; undefined when there are none. */
  takeUpdate(): MarkingUpdate | undefined {
    this.published = this.flows.size;
    if (this.upserts.size === 0 && this.deletes.size === 0) return undefined;
    const update = { upserts: [...this.upserts.values()], deletes: [...this.deletes] };
    this.upserts = new Map();
    this.deletes = new Set();
    return update;
  }

  /** Every flow held, as one update (a decode worker starting after the others). */
  snapshot(): MarkingUpdate {
    return { upserts: [...this.flows.values()].map((h) => h.flow), deletes: [] };
  }
}

/** The index and counts a record path checks against (the enricher's). */
export interface MarkingCheck {
  index: MarkingIndex;
  counts: MarkingCounts;
}
