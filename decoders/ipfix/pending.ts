/**
 * Data sets that arrived before their template (common over UDP: an exporter or collector
 * restart, or the template datagram lost). They are held per session, bounded by bytes and
 * by age measured on the caller's receive clock (no timers), and decoded when the template
 * arrives. Everything evicted is counted.
 */
import { charge, countEviction, type FlowDecoderState, makeRoom, type PendingSet, type SessionState, STATE_COST } from './state.js';

/** Estimated bytes of one held set. */
export function pendingBytes(e: PendingSet): number {
  return e.body.length + STATE_COST.pendingSet;
}

/** Drops held sets older than the age limit; returns how many were dropped. */
export function evictExpired(state: FlowDecoderState, session: SessionState, nowMs: number): number {
  const limits = state.limits;
  const q = session.pending;
  if (q.length === 0) return 0;
  let dropped = 0;
  // Not assuming order: a capture replayed out of order can hold newer entries first.
  for (let i = q.length - 1; i >= 0; i--) {
    const e = q[i]!;
    if (nowMs - e.receivedMs > limits.maxPendingAgeMs) {
      session.pendingBytes -= e.body.length;
      charge(state, session, -pendingBytes(e));
      q.splice(i, 1);
      dropped++;
    }
  }
  if (q.length === 0) state.pendingSessions.delete(session);
  countEviction(state, session.address, 'pending-age', dropped);
  return dropped;
}

/**
 * Holds a copy of a set body. Returns how many sets were evicted to make room (the new set
 * itself counts as evicted when it alone exceeds the byte limit, or when neither the
 * session's own older sets nor the state budget can make room for it).
 */
export function hold(state: FlowDecoderState, session: SessionState, entry: PendingSet, nowMs: number): number {
  const limits = state.limits;
  const size = entry.body.length;
  if (size > limits.maxPendingBytes) {
    countEviction(state, session.address, 'pending-cap', 1);
    return 1;
  }
  let evicted = 0;
  while (session.pendingBytes + size > limits.maxPendingBytes && session.pending.length > 0) {
    const old = session.pending.shift()!;
    session.pendingBytes -= old.body.length;
    charge(state, session, -pendingBytes(old));
    evicted++;
  }
  countEviction(state, session.address, 'pending-cap', evicted);
  const cost = pendingBytes(entry);
  // Over the budget or the address's share: the session's own oldest sets go first, then the
  // new one is refused (held data never pushes out anyone's templates).
  let own = 0;
  while (!makeRoom(state, session, cost, nowMs, false) && session.pending.length > 0) {
    const old = session.pending.shift()!;
    session.pendingBytes -= old.body.length;
    charge(state, session, -pendingBytes(old));
    own++;
  }
  if (session.pending.length === 0 && !makeRoom(state, session, cost, nowMs, false)) {
    state.pendingSessions.delete(session);
    countEviction(state, session.address, 'pending-budget', own + 1);
    return evicted + own + 1;
  }
  countEviction(state, session.address, 'pending-budget', own);
  session.pending.push(entry);
  session.pendingBytes += size;
  charge(state, session, cost);
  state.pendingSessions.add(session);
  return evicted + own;
}

/** Removes and returns (in arrival order) the held sets for one domain and template. */
export function take(state: FlowDecoderState, session: SessionState, domain: number, templateId: number): PendingSet[] {
  const q = session.pending;
  const out: PendingSet[] = [];
  if (q.length === 0) return out;
  let w = 0;
  for (let i = 0; i < q.length; i++) {
    const e = q[i]!;
    if (e.domain === domain && e.templateId === templateId) {
      out.push(e);
      session.pendingBytes -= e.body.length;
      charge(state, session, -pendingBytes(e));
    } else {
      q[w++] = e;
    }
  }
  q.length = w;
  if (w === 0) state.pendingSessions.delete(session);
  return out;
}
