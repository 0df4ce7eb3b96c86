/**
 * Sequence-number tracking per (transport session, domain), to count what the network lost.
 *
 * Units differ by protocol: IPFIX counts data records sent before this message (RFC 7011
 * section 3.1, options data records included), NetFlow v9 counts export packets (RFC 3954
 * section 5.1), NetFlow v5 counts flows. All are 32-bit and wrap.
 *
 * A sequence number behind the expected one is either a datagram the network reordered
 * (its records were already counted as lost by the gap it left: give them back) or an
 * exporter restart (start over). A jump forward larger than `MAX_GAP` is treated as a
 * restart too, so one reordered or corrupt header never counts as millions of lost records.
 */

import type { FlowDecodeStats } from './types.js';

export interface SequenceState {
  /** Next expected sequence number, or -1 when unknown (first message, or undecodable sets). */
  expected: number;
  /** Lifetime counters in the protocol's unit (records for IPFIX/v5, datagrams for v9). */
  lost: number;
  late: number;
  resets: number;
  gaps: number;
}

export interface SequenceResult {
  lost: number;
  late: number;
  reset: boolean;
}

const MOD = 4294967296;
/** Larger jumps (forward or back) are treated as an exporter restart, not as loss. */
export const MAX_GAP = 1 << 20;

export function newSequenceState(): SequenceState {
  return { expected: -1, lost: 0, late: 0, resets: 0, gaps: 0 };
}

/**
 * Records a message with sequence number `seq` carrying `count` units; `count` is -1 when
 * unknown (a data set waited for its template), which makes the next message unverifiable.
 * Returns what this message revealed; the caller adds it to its per-datagram stats.
 */
export function trackSequence(s: SequenceState, seq: number, count: number, out: SequenceResult): void {
  out.lost = 0;
  out.late = 0;
  out.reset = false;
  // `>>> 0` is the modulo 2^32 of a 32-bit wrap (and, unlike `% 2 ** 32` on doubles, does not
  // compile to a call to fmod): seq + count and seq - expected stay within (-2^33, 2^33).
  const next = count < 0 ? -1 : (seq + count) >>> 0;
  if (s.expected < 0) {
    s.expected = next;
    return;
  }
  const ahead = (seq - s.expected) >>> 0; // distance forward, modulo 2^32 (wrap)
  if (ahead === 0) {
    s.expected = next;
    return;
  }
  if (ahead < MAX_GAP) {
    out.lost = ahead;
    s.lost += ahead;
    s.gaps++;
    s.expected = next;
    return;
  }
  const behind = MOD - ahead;
  if (behind < MAX_GAP && count >= 0 && behind >= count) {
    // A late datagram from inside a gap we already counted: hand its units back and keep
    // expecting what we expected.
    const back = Math.min(count, s.lost);
    out.late = back;
    s.lost -= back;
    s.late += back;
    return;
  }
  out.reset = true;
  s.resets++;
  s.expected = next;
}

const seqOut: SequenceResult = { lost: 0, late: 0, reset: false };

/**
 * trackSequence for one datagram, adding what it revealed to the datagram's stats in the
 * protocol's unit: 'records' (IPFIX, NetFlow v5) or 'datagrams' (NetFlow v9).
 */
export function countSequence(s: SequenceState, seq: number, count: number, unit: 'records' | 'datagrams', stats: FlowDecodeStats): void {
  trackSequence(s, seq, count, seqOut);
  if (seqOut.lost > 0) {
    stats.sequenceGaps++;
    if (unit === 'records') stats.lostRecords += seqOut.lost;
    else stats.lostDatagrams += seqOut.lost;
  }
  if (unit === 'records') stats.lateRecords += seqOut.late;
  else stats.lateDatagrams += seqOut.late;
  if (seqOut.reset) stats.sequenceResets++;
}
