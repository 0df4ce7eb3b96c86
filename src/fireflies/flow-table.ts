import type { Firefly, FireflyFlowEvent } from '../../decoders/firefly/types.js';

/**
 * The firefly flow table: pairs the start, ongoing and end fireflies of one transfer into one
 * flow and reports it to the per-bucket sums as `started`, `ended` or `expired` events.
 *
 * Rules (README "Fireflies: flow tracking"):
 * - A flow is its 5-tuple (protocol, both addresses, both ports) in either direction: XRootD
 *   sends every firefly twice with source and destination swapped, and both ends of a
 *   transfer may report it; all of these are one flow.
 * - `start` opens a flow (a `started` event). A second start of a live flow is a duplicate,
 *   unless its start-time is more than `duplicateWindowSeconds` after the live flow's: then
 *   the 5-tuple was reused, the old flow is expired and a new one starts.
 * - `ongoing` updates a live flow's usage and netlink; on an unknown 5-tuple it opens a flow
 *   without a start (no `started` event: none was seen).
 * - `end` closes the flow (an `ended` event); an end with no live flow is `ended` with
 *   `withoutStart`. Either way the 5-tuple is remembered for `duplicateWindowSeconds`, so
 *   the other end's (or XRootD's swapped) copy of the end, and late ongoing or start copies
 *   of the ended transfer, count as duplicates instead of a second flow. A second end is a
 *   copy only when its start-time and its end-time are each at most the window after the
 *   remembered end's (as starts are compared): a new transfer reusing the 5-tuple starts
 *   and ends later, so its end is a new (`withoutStart`) end, not a duplicate.
 * - A flow with no update (receive time) for `flowTimeoutSeconds` is `expired` by tick().
 *
 * At its end, from the end firefly (earlier fireflies of the flow fill what it lacks):
 * - duration: end-time - start-time of the end firefly, in seconds (0 when negative);
 * - bytes: usage received + sent, i.e. both directions as seen by one reporting host; a
 *   second report of the same flow is a duplicate, so nothing is counted twice;
 * - throughput: max(received, sent) * 8 / duration in bit/s, the larger direction over the
 *   duration as scitags/firefly-collector computes it (conf/ruby/calc_throughput.rb, which
 *   gives bytes/s over whole seconds); undefined without usage or with a zero duration;
 * - rtt, delivery rate and retransmits: from `netlink` (flowd-go's TCP info), the latest
 *   reported; the delivery rate (bytes/s on the wire) is reported in bit/s like the throughput.
 *
 * Bounded: at most `maxFlows` live flows (and as many remembered ends). When full, a new flow
 * takes the place of the least recently updated flow of the exporter holding the most flows
 * (the newcomer's own exporter when it is among the largest): a host can only push out flows
 * of hosts holding at least as many as itself, so one flooding host evicts its own flows and
 * no one else's. An evicted flow is reported `expired` (it never ends here) and counted as
 * evicted. Every operation is O(1) (expiry O(1) per expired flow); no timers inside: the
 * owner calls tick() with its clock.
 */

export interface FlowTableConfig {
  /** Live flows held; the fair-share eviction above keeps it. */
  maxFlows: number;
  /** A flow with no firefly for this long is expired. */
  flowTimeoutSeconds: number;
  /** How long an ended 5-tuple is remembered to recognise duplicate copies. */
  duplicateWindowSeconds: number;
}

/** Estimated bytes of one live flow (object, key string, map entry, list links) and one remembered end. */
export const FLOW_ENTRY_BYTES = 480;
export const ENDED_ENTRY_BYTES = 200;

export interface FlowTableStats {
  started: number;
  ended: number;
  expired: number;
  /** Ended flows whose start this collector never saw (also in `ended`). */
  withoutStart: number;
  duplicates: number;
  evicted: number;
  flows: number;
  rememberedEnds: number;
  exporters: number;
  /** Estimated memory of the table (FLOW_ENTRY_BYTES and ENDED_ENTRY_BYTES per entry). */
  estimatedBytes: number;
}

interface Flow {
  readonly key: string;
  readonly owner: ExporterFlows;
  readonly experimentId: number;
  readonly activityId: number;
  readonly ipVersion: 4 | 6;
  readonly srcSite: string;
  readonly dstSite: string;
  startMs: number;
  started: boolean;
  /** Receive time of the latest firefly (expiry and eviction order). */
  lastMs: number;
  receivedBytes: number | undefined;
  sentBytes: number | undefined;
  rttMs: number | undefined;
  deliveryRateBytesPerSecond: number | undefined;
  retransmits: number | undefined;
  // Global list, least recently updated first (expiry).
  gPrev: Flow | undefined;
  gNext: Flow | undefined;
  // The owner's list, least recently updated first (eviction).
  ePrev: Flow | undefined;
  eNext: Flow | undefined;
}

interface ExporterFlows {
  readonly address: string;
  count: number;
  head: Flow | undefined;
  tail: Flow | undefined;
}

interface EndedFlow {
  /** The ended flow's start-time (the firefly's clock). */
  startMs: number;
  /** The end firefly's end-time (the firefly's clock). */
  endMs: number | undefined;
  /** When its end was received (forgotten duplicateWindowSeconds later). */
  atMs: number;
}

/** The direction-insensitive key: protocol, then the two (address, port) ends in sorted order. */
export function flowKey(f: Pick<Firefly, 'protocol' | 'srcAddr' | 'srcPort' | 'dstAddr' | 'dstPort'>): string {
  const a = `${f.srcAddr} ${f.srcPort}`;
  const b = `${f.dstAddr} ${f.dstPort}`;
  return a <= b ? `${f.protocol}|${a}|${b}` : `${f.protocol}|${b}|${a}`;
}

/** Seconds between the firefly's start-time and end-time; 0 when unknown or negative. */
export function durationSecondsOf(startMs: number, endMs: number | undefined): number {
  if (endMs === undefined || !(endMs > startMs)) return 0;
  return (endMs - startMs) / 1000;
}

/** The larger direction over the duration in bit/s; undefined without usage or duration. */
export function throughputOf(received: number | undefined, sent: number | undefined, durationSeconds: number): number | undefined {
  if ((received === undefined && sent === undefined) || !(durationSeconds > 0)) return undefined;
  return (Math.max(received ?? 0, sent ?? 0) * 8) / durationSeconds;
}

export class FlowTable {
  private readonly flows = new Map<string, Flow>();
  /** Ended 5-tuples in end order, oldest first (Map keeps insertion order). */
  private readonly ended = new Map<string, EndedFlow>();
  private readonly exporters = new Map<string, ExporterFlows>();
  /** Exporters by flow count, and the largest count: the eviction victim in O(1). */
  private readonly byCount = new Map<number, Set<ExporterFlows>>();
  private maxCount = 0;
  private gHead: Flow | undefined;
  private gTail: Flow | undefined;
  private readonly counts = { started: 0, ended: 0, expired: 0, withoutStart: 0, duplicates: 0, evicted: 0 };
  private readonly timeoutMs: number;
  private readonly windowMs: number;

  constructor(
    private readonly config: FlowTableConfig,
    private readonly deps: {
      /** Site of an address, fixed for the flow when it opens. */
      siteOf: (address: string) => string;
      emit: (event: FireflyFlowEvent) => void;
    },
  ) {
    if (!(config.maxFlows >= 1)) throw new Error('maxFlows must be at least 1');
    this.timeoutMs = config.flowTimeoutSeconds * 1000;
    this.windowMs = config.duplicateWindowSeconds * 1000;
  }

  /** One validated firefly received at `receivedMs` (collector clock) from `exporter`. */
  accept(f: Firefly, receivedMs: number, exporter: string): void {
    const key = flowKey(f);
    const flow = this.flows.get(key);
    if (f.state === 'start') {
      if (flow) {
        if (f.startMs - flow.startMs > this.windowMs) {
          // The 5-tuple was reused by a new transfer while the old one never ended.
          this.expire(flow, receivedMs);
        } else {
          this.update(flow, f, receivedMs);
          if (flow.started) {
            this.counts.duplicates++;
            return;
          }
          // The start arrived after an ongoing of its flow (fireflies are UDP: no order).
          flow.started = true;
          flow.startMs = f.startMs;
          this.counts.started++;
          this.deps.emit(this.event('started', flow, receivedMs));
          return;
        }
      } else {
        const end = this.ended.get(key);
        if (end && f.startMs - end.startMs <= this.windowMs) {
          // A late copy of the start of a flow that already ended here.
          this.counts.duplicates++;
          return;
        }
        if (end) this.ended.delete(key);
      }
      this.open(key, f, receivedMs, exporter, true);
      this.counts.started++;
      this.deps.emit(this.event('started', this.flows.get(key)!, receivedMs));
      return;
    }
    if (f.state === 'ongoing') {
      if (flow) this.update(flow, f, receivedMs);
      else if (this.ended.has(key)) this.counts.duplicates++;
      else this.open(key, f, receivedMs, exporter, false);
      return;
    }
    // end
    if (flow) {
      this.update(flow, f, receivedMs);
      this.remove(flow);
      this.finish(f, flow, receivedMs);
    } else if (this.isCopyOfEnded(key, f)) {
      this.counts.duplicates++;
      return;
    } else {
      this.finish(f, undefined, receivedMs);
    }
    this.remember(key, flow?.startMs ?? f.startMs, f.endMs, receivedMs);
  }

  /** Expires flows idle for flowTimeoutSeconds and forgets ends older than the duplicate window. */
  tick(nowMs: number): void {
    while (this.gHead && nowMs - this.gHead.lastMs >= this.timeoutMs) {
      this.counts.expired++;
      this.expireQuietly(this.gHead, nowMs);
    }
    for (const [key, e] of this.ended) {
      if (nowMs - e.atMs < this.windowMs) break;
      this.ended.delete(key);
    }
  }

  stats(): FlowTableStats {
    return {
      ...this.counts,
      flows: this.flows.size,
      rememberedEnds: this.ended.size,
      exporters: this.exporters.size,
      estimatedBytes: this.flows.size * FLOW_ENTRY_BYTES + this.ended.size * ENDED_ENTRY_BYTES,
    };
  }

  /** Flows held per exporter (tests and the fair-share check). */
  flowsOf(exporter: string): number {
    return this.exporters.get(exporter)?.count ?? 0;
  }

  // ---------------------------------------------------------------------------------------

  private open(key: string, f: Firefly, receivedMs: number, exporter: string, started: boolean): void {
    if (this.flows.size >= this.config.maxFlows) this.evictFor(this.exporters.get(exporter));
    // Looked up after the eviction, which may have removed this exporter's last flow.
    let owner = this.exporters.get(exporter);
    if (!owner) {
      owner = { address: exporter, count: 0, head: undefined, tail: undefined };
      this.exporters.set(exporter, owner);
    }
    const flow: Flow = {
      key,
      owner,
      experimentId: f.experimentId,
      activityId: f.activityId,
      ipVersion: f.ipVersion,
      srcSite: this.deps.siteOf(f.srcAddr),
      dstSite: this.deps.siteOf(f.dstAddr),
      startMs: f.startMs,
      started,
      lastMs: receivedMs,
      receivedBytes: f.receivedBytes,
      sentBytes: f.sentBytes,
      rttMs: f.netlink?.rttMs,
      deliveryRateBytesPerSecond: f.netlink?.deliveryRateBytesPerSecond,
      retransmits: f.netlink?.retransmits,
      gPrev: undefined,
      gNext: undefined,
      ePrev: undefined,
      eNext: undefined,
    };
    this.flows.set(key, flow);
    this.appendGlobal(flow);
    this.appendOwner(flow);
    this.setCount(owner, owner.count + 1);
  }

  /** Makes room for one flow of `newcomer` (see the class comment). */
  private evictFor(newcomer: ExporterFlows | undefined): void {
    const largest = this.byCount.get(this.maxCount);
    let victim: ExporterFlows | undefined;
    if (newcomer && newcomer.count === this.maxCount) victim = newcomer;
    else victim = largest?.values().next().value;
    const flow = victim?.head;
    if (!flow) return;
    this.counts.evicted++;
    this.expireQuietly(flow, flow.lastMs);
  }

  /** Reports `flow` expired at `atMs` and drops it (counted by the caller: expired or evicted). */
  private expireQuietly(flow: Flow, atMs: number): void {
    this.remove(flow);
    this.deps.emit(this.event('expired', flow, atMs));
  }

  private expire(flow: Flow, atMs: number): void {
    this.counts.expired++;
    this.expireQuietly(flow, atMs);
  }

  private update(flow: Flow, f: Firefly, receivedMs: number): void {
    if (f.receivedBytes !== undefined || f.sentBytes !== undefined) {
      flow.receivedBytes = f.receivedBytes;
      flow.sentBytes = f.sentBytes;
    }
    if (f.netlink?.rttMs !== undefined) flow.rttMs = f.netlink.rttMs;
    if (f.netlink?.deliveryRateBytesPerSecond !== undefined) flow.deliveryRateBytesPerSecond = f.netlink.deliveryRateBytesPerSecond;
    if (f.netlink?.retransmits !== undefined) flow.retransmits = f.netlink.retransmits;
    if (receivedMs >= flow.lastMs) flow.lastMs = receivedMs;
    // Most recently updated goes last in both lists.
    this.unlinkGlobal(flow);
    this.appendGlobal(flow);
    this.unlinkOwner(flow);
    this.appendOwner(flow);
  }

  /** The `ended` event of end firefly `f` (its flow, when one was live, fills what `f` lacks). */
  private finish(f: Firefly, flow: Flow | undefined, receivedMs: number): void {
    const durationSeconds = durationSecondsOf(f.startMs, f.endMs);
    // update() already took the end's usage and netlink into the flow.
    const received = flow ? flow.receivedBytes : f.receivedBytes;
    const sent = flow ? flow.sentBytes : f.sentBytes;
    const deliveryRate = flow ? flow.deliveryRateBytesPerSecond : f.netlink?.deliveryRateBytesPerSecond;
    const withoutStart = !flow?.started;
    this.counts.ended++;
    if (withoutStart) this.counts.withoutStart++;
    this.deps.emit({
      kind: 'ended',
      atMs: receivedMs,
      experimentId: flow?.experimentId ?? f.experimentId,
      activityId: flow?.activityId ?? f.activityId,
      ipVersion: flow?.ipVersion ?? f.ipVersion,
      srcSite: flow?.srcSite ?? this.deps.siteOf(f.srcAddr),
      dstSite: flow?.dstSite ?? this.deps.siteOf(f.dstAddr),
      durationSeconds,
      bytes: (received ?? 0) + (sent ?? 0),
      throughputBitsPerSecond: throughputOf(received, sent, durationSeconds),
      rttMs: flow ? flow.rttMs : f.netlink?.rttMs,
      deliveryRateBitsPerSecond: deliveryRate === undefined ? undefined : deliveryRate * 8,
      retransmits: flow ? flow.retransmits : f.netlink?.retransmits,
      withoutStart,
    });
  }

  /**
   * Whether end firefly `f` is a copy of the remembered end of its 5-tuple: start-time and
   * end-time each at most the window after the remembered ones (an earlier time cannot be a
   * later transfer; the window absorbs the clock skew between the two reporting hosts).
   */
  private isCopyOfEnded(key: string, f: Firefly): boolean {
    const end = this.ended.get(key);
    if (!end || f.startMs - end.startMs > this.windowMs) return false;
    return f.endMs === undefined || end.endMs === undefined || f.endMs - end.endMs <= this.windowMs;
  }

  private remember(key: string, startMs: number, endMs: number | undefined, atMs: number): void {
    this.ended.delete(key);
    this.ended.set(key, { startMs, endMs, atMs });
    // Bounded like the flows: the oldest remembered end goes first.
    if (this.ended.size > this.config.maxFlows) {
      const oldest = this.ended.keys().next().value;
      if (oldest !== undefined) this.ended.delete(oldest);
    }
  }

  private event(kind: 'started' | 'expired', flow: Flow, atMs: number): FireflyFlowEvent {
    return {
      kind,
      atMs,
      experimentId: flow.experimentId,
      activityId: flow.activityId,
      ipVersion: flow.ipVersion,
      srcSite: flow.srcSite,
      dstSite: flow.dstSite,
      durationSeconds: 0,
      bytes: 0,
      throughputBitsPerSecond: undefined,
      rttMs: undefined,
      deliveryRateBitsPerSecond: undefined,
      retransmits: undefined,
      withoutStart: !flow.started,
    };
  }

  private remove(flow: Flow): void {
    this.flows.delete(flow.key);
    this.unlinkGlobal(flow);
    this.unlinkOwner(flow);
    const owner = flow.owner;
    this.setCount(owner, owner.count - 1);
    if (owner.count === 0) this.exporters.delete(owner.address);
  }

  /** Moves `ex` between the count buckets; counts change by one, so the maximum follows in O(1). */
  private setCount(ex: ExporterFlows, count: number): void {
    const old = this.byCount.get(ex.count);
    if (old) {
      old.delete(ex);
      if (old.size === 0) {
        this.byCount.delete(ex.count);
        if (ex.count === this.maxCount) this.maxCount = count;
      }
    }
    ex.count = count;
    if (count > 0) {
      let set = this.byCount.get(count);
      if (!set) this.byCount.set(count, (set = new Set()));
      set.add(ex);
    }
    if (count > this.maxCount) this.maxCount = count;
  }

  private appendGlobal(flow: Flow): void {
    flow.gPrev = this.gTail;
    flow.gNext = undefined;
    if (this.gTail) this.gTail.gNext = flow;
    else this.gHead = flow;
    this.gTail = flow;
  }

  private unlinkGlobal(flow: Flow): void {
    if (flow.gPrev) flow.gPrev.gNext = flow.gNext;
    else this.gHead = flow.gNext;
    if (flow.gNext) flow.gNext.gPrev = flow.gPrev;
    else this.gTail = flow.gPrev;
    flow.gPrev = flow.gNext = undefined;
  }

  private appendOwner(flow: Flow): void {
    const o = flow.owner;
    flow.ePrev = o.tail;
    flow.eNext = undefined;
    if (o.tail) o.tail.eNext = flow;
    else o.head = flow;
    o.tail = flow;
  }

  private unlinkOwner(flow: Flow): void {
    const o = flow.owner;
    if (flow.ePrev) flow.ePrev.eNext = flow.eNext;
    else o.head = flow.eNext;
    if (flow.eNext) flow.eNext.ePrev = flow.ePrev;
    else o.tail = flow.ePrev;
    flow.ePrev = flow.eNext = undefined;
  }
}
