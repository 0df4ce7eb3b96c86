import type { Firefly, FireflyFlowEvent, FireflyState } from '../../decoders/firefly/types.js';
import { DEFAULT_FLOW_TABLE_CONFIG, FireflyTracker } from '../fireflies/tracker.js';
import { silentLogger } from '../log.js';
import type { Registry } from '../registry/registry.js';
import { namedPair, type PairTotals } from './summary.js';

/** Flow-table events of one (experiment, activity): the firefly's declared ids, with registry names. */
export interface FireflyFlowTotals extends Omit<PairTotals, 'records' | 'packets' | 'bytes'> {
  started: number;
  ended: number;
  expired: number;
  /** Ended flows whose start was not seen (also in `ended`), as the flow table counts them. */
  withoutStart: number;
}

/** The `fireflies` section of the `ingest` document (README, "The `ingest` document"). */
export interface FireflySection {
  /** UDP datagrams to the firefly port. */
  datagrams: number;
  accepted: Record<FireflyState, number>;
  /** Refused datagrams by reason (too-large, not-utf8, not-firefly, not-json, schema). */
  refused: Record<string, number>;
  flows: FireflyFlowTotals[];
  /** Copies of a flow's start or end the flow table recognised (counted, nothing else). */
  duplicates: number;
  /** Flows still open when the captures end (neither ended nor expired). */
  open: number;
}

/**
 * Fireflies of captures through the daemon's flow table (FireflyTracker with the default
 * fireflies.* settings), capture time as its clock: ticked with each firefly's capture time
 * before the firefly, as the daemon's per-second tick would have run by then. No site map:
 * the document groups by (experiment, activity) only.
 */
export class FireflySummary {
  readonly accepted: Record<FireflyState, number> = { start: 0, ongoing: 0, end: 0 };
  readonly refused: Record<string, number> = {};
  /** Keyed by experiment * 64 + activity (ids fit 9 + 6 bits: the schema checks them). */
  private readonly pairs = new Map<number, { started: number; ended: number; expired: number; withoutStart: number }>();
  private readonly tracker = new FireflyTracker(DEFAULT_FLOW_TABLE_CONFIG, { siteOf: () => 'unknown', log: silentLogger() });

  constructor() {
    this.tracker.onEvent((e) => this.count(e));
  }

  accept(f: Firefly, receivedMs: number, exporterAddr: string): void {
    this.accepted[f.state]++;
    this.tracker.tick(receivedMs);
    this.tracker.accept(f, receivedMs, exporterAddr);
  }

  refuse(reason: string): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
  }

  section(registry: Registry, datagrams: number): FireflySection {
    const stats = this.tracker.stats();
    return {
      datagrams,
      accepted: { ...this.accepted },
      refused: { ...this.refused },
      flows: [...this.pairs.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([key, c]) => ({ ...namedPair(registry, Math.floor(key / 64), key % 64), ...c })),
      duplicates: stats.duplicates,
      open: stats.flows,
    };
  }

  private count(e: FireflyFlowEvent): void {
    const key = e.experimentId * 64 + e.activityId;
    let c = this.pairs.get(key);
    if (!c) this.pairs.set(key, (c = { started: 0, ended: 0, expired: 0, withoutStart: 0 }));
    c[e.kind]++;
    if (e.kind === 'ended' && e.withoutStart) c.withoutStart++;
  }
}
