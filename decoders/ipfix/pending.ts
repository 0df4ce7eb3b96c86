/**
 * Data sets that arrived before their template (common over UDP: an exporter or collector
 * restart, or the template datagram lost). They are held per session, bounded by bytes and
 * by age measured on the caller's receive clock (no timers), and decoded when the template
 * arrives. Everything evicted is counted.
 */
import type { FlowDecoderLimits, PendingSet, SessionState } from './state.js';

/** Drops held sets older than the age limit; returns how many were dropped. */
export function evictExpired(session: SessionState, nowMs: number, limits: FlowDecoderLimits): number {
  const q = session.pending;
  if (q.length === 0) return 0;
  let dropped = 0;
  // Not assuming order: a capture replayed out of order can hold newer entries first.
  for (let i = q.length - 1; i >= 0; i--) {
    const e = q[i]!;
    if (nowMs - e.receivedMs > limits.maxPendingAgeMs) {
      session.pendingBytes -= e.body.length;
      q.splice(i, 1);
      dropped++;
    }
  }
  return dropped;
}

/**
 * Holds a copy of a set body. Returns how many sets were evicted to make room (the new set
 * itself counts as evicted when it alone exceeds the byte limit).
 */
export function hold(session: SessionState, entry: PendingSet, limits: FlowDecoderLimits): number {
  const size = entry.body.length;
  if (size > limits.maxPendingBytes) return 1;
  let evicted = 0;
  while (session.pendingBytes + size > limits.maxPendingBytes && session.pending.length > 0) {
    const old = session.pending.shift()!;
    session.pendingBytes -= old.body.length;
    evicted++;
  }
  session.pending.push(entry);
  session.pendingBytes += size;
  return evicted;
}

/** Removes and returns (in arrival order) the held sets for one domain and template. */
export function take(session: SessionState, domain: number, templateId: number): PendingSet[] {
  const q = session.pending;
  const out: PendingSet[] = [];
  if (q.length === 0) return out;
  let w = 0;
  for (let i = 0; i < q.length; i++) {
    const e = q[i]!;
    if (e.domain === domain && e.templateId === templateId) {
      out.push(e);
      session.pendingBytes -= e.body.length;
    } else {
      q[w++] = e;
    }
  }
  q.length = w;
  return out;
}
