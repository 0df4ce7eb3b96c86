/**
 * Interns links (exporter, inIf, outIf) into small integer ids, so a cell key is one number
 * (link id * SERIES_SPACE + series code) that stays a V8 small integer for the first ~65k
 * links: Map lookups on small integers are about twice as fast as on heap numbers.
 *
 * ifIndex is 32-bit, so (inIf, outIf) cannot be packed into one safe integer; a nested
 * numeric map per exporter avoids building strings per record. An absent interface is -1.
 * Ids are never reused while they are referenced; compaction (renumbering the ids of live
 * cells) is the aggregator's job, since only it knows which ids are live.
 */
export const NO_IF = -1;

/**
 * One side of a record's link: NO_IF when the exporter reported no interface or ifIndex 0.
 * Interfaces are numbered from 1 (RFC 2863, IF-MIB InterfaceIndex 1..2147483647), and
 * exporters of every protocol send 0 for "none" (RFC 3176 section 5: "0 if interface is not
 * known"; NetFlow v5 and IPFIX exporters for traffic to or from the router itself), so a link
 * `exporter:0` would name no interface. Protocol-specific encodings of "none" (sFlow's
 * 0x3FFFFFFF) are the decoders' job; this is the rule common to all. Decoders and `decode`
 * keep the 0 they read.
 */
export function linkIf(ifIndex: number | undefined): number {
  return ifIndex === undefined || ifIndex === 0 ? NO_IF : ifIndex;
}

/** One exporter's links. The aggregator keeps a reference, so the hot path skips a lookup. */
export interface ExporterLinks {
  readonly exporter: string;
  readonly byIn: Map<number, Map<number, number>>;
  /** Links of this exporter in the table (since the last reset): its use of the shared capacity. */
  count: number;
}

/** intern() results when a new link is refused: the table is full, or the exporter is over its fair share. */
export const REFUSED_FULL = -1;
export const REFUSED_SHARE = -2;

/**
 * The fair-share rule, shared by the link table and the aggregator's live keys. Once half the
 * capacity is used, an exporter already holding capacity / (exporters holding any) or more is
 * refused, while the others still get room; the capacity itself stays hard. Half, so that
 * exporters below their share always find at least half the capacity free, whatever one
 * exporter took before the rule applied. Multiplication instead of division: integers only.
 */
export function overFairShare(used: number, capacity: number, held: number, holders: number): boolean {
  return used * 2 >= capacity && held * holders >= capacity;
}

export class LinkTable {
  readonly exporterOf: string[] = [];
  readonly inOf: number[] = [];
  readonly outOf: number[] = [];
  private readonly exporters = new Map<string, ExporterLinks>();
  /** Exporters with count > 0 (the fair share's divisor). */
  private holders = 0;

  /** @param capacity new links beyond this many are refused (the caller folds them). */
  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.exporterOf.length;
  }

  exporter(addr: string): ExporterLinks {
    let ex = this.exporters.get(addr);
    if (ex === undefined) this.exporters.set(addr, (ex = { exporter: addr, byIn: new Map(), count: 0 }));
    return ex;
  }

  /**
   * The link's id. A new link is refused, unless `force`, with REFUSED_FULL when the table is
   * full and REFUSED_SHARE when the exporter is over its fair share (overFairShare): one
   * exporter spraying random interfaces cannot take every other exporter's room for new links.
   */
  intern(ex: ExporterLinks, inIf: number, outIf: number, force: boolean): number {
    let byOut = ex.byIn.get(inIf);
    if (byOut === undefined) {
      if (!force) {
        const refused = this.refuse(ex);
        if (refused !== 0) return refused;
      }
      ex.byIn.set(inIf, (byOut = new Map()));
    }
    const id = byOut.get(outIf);
    if (id !== undefined) return id;
    if (!force) {
      const refused = this.refuse(ex);
      if (refused !== 0) return refused;
    }
    const next = this.exporterOf.length;
    this.exporterOf.push(ex.exporter);
    this.inOf.push(inIf);
    this.outOf.push(outIf);
    byOut.set(outIf, next);
    if (ex.count++ === 0) this.holders++;
    return next;
  }

  /** Why a new link of `ex` is refused, 0 when it is not. Runs only for new links. */
  private refuse(ex: ExporterLinks): number {
    const size = this.size;
    if (size >= this.capacity) return REFUSED_FULL;
    if (overFairShare(size, this.capacity, ex.count, this.holders)) return REFUSED_SHARE;
    return 0;
  }

  /**
   * Forgets every link and returns the old (exporter, in, out) columns, for renumbering.
   * ExporterLinks objects survive (emptied), so references held by callers stay valid.
   */
  reset(): { exporterOf: string[]; inOf: number[]; outOf: number[] } {
    const old = { exporterOf: this.exporterOf.splice(0), inOf: this.inOf.splice(0), outOf: this.outOf.splice(0) };
    for (const ex of this.exporters.values()) {
      ex.byIn.clear();
      ex.count = 0;
    }
    this.holders = 0;
    return old;
  }
}
