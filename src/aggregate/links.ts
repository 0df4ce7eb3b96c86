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
}

export class LinkTable {
  readonly exporterOf: string[] = [];
  readonly inOf: number[] = [];
  readonly outOf: number[] = [];
  private readonly exporters = new Map<string, ExporterLinks>();

  /** @param capacity new links beyond this many are refused (the caller folds them). */
  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.exporterOf.length;
  }

  exporter(addr: string): ExporterLinks {
    let ex = this.exporters.get(addr);
    if (ex === undefined) this.exporters.set(addr, (ex = { exporter: addr, byIn: new Map() }));
    return ex;
  }

  /** The link's id; -1 when it is new and the table is full, unless `force`. */
  intern(ex: ExporterLinks, inIf: number, outIf: number, force: boolean): number {
    let byOut = ex.byIn.get(inIf);
    if (byOut === undefined) {
      if (!force && this.size >= this.capacity) return -1;
      ex.byIn.set(inIf, (byOut = new Map()));
    }
    const id = byOut.get(outIf);
    if (id !== undefined) return id;
    if (!force && this.size >= this.capacity) return -1;
    const next = this.exporterOf.length;
    this.exporterOf.push(ex.exporter);
    this.inOf.push(inIf);
    this.outOf.push(outIf);
    byOut.set(outIf, next);
    return next;
  }

  /**
   * Forgets every link and returns the old (exporter, in, out) columns, for renumbering.
   * ExporterLinks objects survive (emptied), so references held by callers stay valid.
   */
  reset(): { exporterOf: string[]; inOf: number[]; outOf: number[] } {
    const old = { exporterOf: this.exporterOf.splice(0), inOf: this.inOf.splice(0), outOf: this.outOf.splice(0) };
    for (const ex of this.exporters.values()) ex.byIn.clear();
    return old;
  }
}
