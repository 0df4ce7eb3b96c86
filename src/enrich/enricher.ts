import type { FlowRecord } from '../../decoders/record.js';
import type { RecordAggregator } from '../pipeline/decoder.js';
import type { Nat64Prefixes } from './nat64.js';
import { type MarkingCheck, outcomeOf } from '../fireflies/marking.js';
import type { Nat64TopSink } from './nat64-top.js';
import { type SiteLookup, UNKNOWN_SITE_ID } from './site-lookup.js';

/**
 * The enrichment step between the decoders and aggregation, the same in `serve` (inline and in
 * each decode worker) and `ingest`: sets the record's NAT64 flag and its source and
 * destination site ids from its address bytes, then hands it to the traffic aggregator (per
 * link) and, when a site table is in force, to the site-pair aggregator.
 *
 * Records without addresses (templates with no IE 8/12/27/28, headers cut before them) have
 * no NAT64 flag and unknown sites: they are never guessed.
 */
export class Enricher implements RecordAggregator {
  private sites: SiteLookup | undefined;
  /** The firefly marking check (src/fireflies/marking.ts); absent: off. */
  marking: MarkingCheck | undefined;
  /** The per-bucket top N of IPv4 destinations behind NAT64 (transition.nat64TopN; absent: off). */
  private nat64Top: Nat64TopSink | undefined;

  constructor(
    private readonly nat64: Nat64Prefixes,
    private readonly traffic: RecordAggregator,
    private readonly sitePairs: RecordAggregator | undefined,
    sites: SiteLookup | undefined,
  ) {
    this.setSites(sites);
  }

  /** A new site table (a CRIC refresh); an empty one turns site attribution off. */
  setSites(sites: SiteLookup | undefined): void {
    this.sites = sites === undefined || sites.empty || this.sitePairs === undefined ? undefined : sites;
  }

  /** Where NAT64 records' embedded IPv4 addresses are counted (src/enrich/nat64-top.ts). */
  setNat64Top(sink: Nat64TopSink | undefined): void {
    this.nat64Top = sink;
  }

  add(rec: FlowRecord, receivedMs: number, exporterAddr: string): void {
    const b = rec.addrBytes;
    const len = rec.addrLen;
    let nat64 = false;
    if (len === 16 && b !== undefined) {
      // Either side: traffic from an IPv6-only host to an IPv4 service through the translator,
      // and its answers, both need IPv4 behind it.
      nat64 = this.nat64.match(b, rec.dstAddrAt) >= 0 || this.nat64.match(b, rec.srcAddrAt) >= 0;
    }
    rec.nat64 = nat64;
    if (nat64 && this.nat64Top !== undefined) this.nat64Top.addRecord(rec, receivedMs, this.nat64);
    const sites = this.sites;
    if (sites !== undefined) {
      if (len !== 0 && b !== undefined) {
        rec.srcSite = sites.siteOf(b, rec.srcAddrAt, len);
        rec.dstSite = sites.siteOf(b, rec.dstAddrAt, len);
      } else rec.srcSite = rec.dstSite = UNKNOWN_SITE_ID;
    }
    const marking = this.marking;
    if (marking !== undefined && marking.index.size > 0) {
      const flow = marking.index.find(rec);
      if (flow !== undefined) marking.counts.count(flow, outcomeOf(rec, flow), rec);
    }
    this.traffic.add(rec, receivedMs, exporterAddr);
    if (sites !== undefined) this.sitePairs!.add(rec, receivedMs, exporterAddr);
  }
}
