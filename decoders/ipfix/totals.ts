/**
 * Running totals turned into deltas, per flow.
 *
 * octetTotalCount / packetTotalCount (85/86, and their RFC 5103 reverse IEs) count "since the
 * Metering Process started observing the flow" (IANA IPFIX registry; RFC 7012 5.10): an
 * exporter that reports a long flow several times (YAF, some Cisco ASA builds) repeats what
 * it already reported. The aggregator sums deltas, so each record adds what grew since the
 * previous record of the same flow: the first record of a flow counts its whole total, a
 * repeat the difference, and a total smaller than the last one (the exporter restarted the
 * flow or its counters) counts in full.
 *
 * A flow is named by flowId (148) when the template carries it, else by its key fields as
 * decoded (addresses, ports, protocol, interfaces, VLAN, flow start time), per transport
 * session and observation domain. The table lives in the domain's state and is bounded
 * three ways: entries idle for FLOW_TOTALS_IDLE_MS are dropped, a domain holds at most
 * MAX_FLOW_TOTALS_PER_DOMAIN, and each entry is charged to the decoder state budget
 * (decoder.stateBudgetBytes, STATE_COST.flowTotal): when the budget or the exporter's fair
 * share is used up, the domain's least recently updated flow is forgotten to make room (and
 * when it has none, the record counts its total as is, like a flow seen once). Forgetting a
 * flow only means its next record counts its whole total again. The table is not persisted:
 * after a restart the first record of a long flow counts its whole total.
 */
import { charge, fairShare, STATE_COST, type FlowDecoderState, type SessionState } from './state.js';

export interface FlowTotal {
  bytes: number;
  packets: number;
  revBytes: number;
  revPackets: number;
  /** Receive time of the last record of this flow. */
  lastMs: number;
}

/** Per domain; Map order is least recently updated first (an update moves the entry last). */
export type FlowTotalsTable = Map<string, FlowTotal>;

/** Flows remembered per observation domain. */
export const MAX_FLOW_TOTALS_PER_DOMAIN = 65_536;

/**
 * A flow not reported for this long is forgotten. Exporters report a live flow at least
 * every active timeout (YAF: 30 min by default; Cisco ASA flow-update: 1 min); an hour covers both.
 */
export const FLOW_TOTALS_IDLE_MS = 3_600_000;

/** The deltas of the current record (scratch: decoding is synchronous). */
export interface Deltas {
  bytes: number;
  packets: number;
  revBytes: number;
  revPackets: number;
}

/** A total smaller than the previous one starts again (RFC 7011 has no wrap for totals). */
function delta(prev: number, now: number): number {
  return now >= prev ? now - prev : now;
}

function forget(state: FlowDecoderState, session: SessionState, table: FlowTotalsTable, key: string): void {
  table.delete(key);
  charge(state, session, -STATE_COST.flowTotal);
}

/** True when one more entry fits the budget and the exporter address's fair share. */
function fits(state: FlowDecoderState, session: SessionState): boolean {
  const cost = STATE_COST.flowTotal;
  if (state.bytes + cost > state.limits.stateBudgetBytes) return false;
  const a = state.addresses.get(session.address);
  return a === undefined || a.bytes + cost <= fairShare(state);
}

/**
 * Turns the totals in `d` (those flagged by `bytesTotal`...; the others are deltas already
 * and pass through) into deltas for the flow `key`, updating the table.
 */
export function totalsToDeltas(
  state: FlowDecoderState,
  session: SessionState,
  table: FlowTotalsTable,
  key: string,
  nowMs: number,
  d: Deltas,
  bytesTotal: boolean,
  packetsTotal: boolean,
  revBytesTotal: boolean,
  revPacketsTotal: boolean,
): void {
  // Drop idle flows from the old end: at most two per record, so the cost stays constant.
  for (let i = 0; i < 2; i++) {
    const head = table.entries().next();
    if (head.done || nowMs - head.value[1].lastMs <= FLOW_TOTALS_IDLE_MS) break;
    forget(state, session, table, head.value[0]);
  }
  let e = table.get(key);
  if (e !== undefined) {
    table.delete(key);
    const b = d.bytes;
    const p = d.packets;
    const rb = d.revBytes;
    const rp = d.revPackets;
    if (bytesTotal) d.bytes = delta(e.bytes, b);
    if (packetsTotal) d.packets = delta(e.packets, p);
    if (revBytesTotal) d.revBytes = delta(e.revBytes, rb);
    if (revPacketsTotal) d.revPackets = delta(e.revPackets, rp);
    e.bytes = b;
    e.packets = p;
    e.revBytes = rb;
    e.revPackets = rp;
    e.lastMs = nowMs;
    table.set(key, e);
    return;
  }
  // First record of this flow: it counts its totals whole; remember them if there is room.
  while (table.size > 0 && (table.size >= MAX_FLOW_TOTALS_PER_DOMAIN || !fits(state, session))) {
    forget(state, session, table, table.keys().next().value!);
  }
  if (!fits(state, session)) return;
  e = { bytes: d.bytes, packets: d.packets, revBytes: d.revBytes, revPackets: d.revPackets, lastMs: nowMs };
  table.set(key, e);
  charge(state, session, STATE_COST.flowTotal);
}
