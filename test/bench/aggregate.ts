import { pathToFileURL } from 'node:url';
import { emptyRecord, type FlowRecord } from '../../decoders/record.js';
import { encodeFlowLabel } from '../../decoders/scitags/flowlabel.js';
import { createAggregator } from '../../src/aggregate/index.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { BENCH_PAIRS as PAIRS, median, nullStore } from './common.js';

/**
 * Aggregator hot path: add() over a realistic mix — 50 exporters x 20 links x 15 registered
 * pairs (15,000 live keys per bucket), plus unmarked IPv6 and IPv4 on every link; half IPFIX
 * flows with timestamps (some spanning a bucket boundary), half sFlow samples; datagrams of
 * 20 records from one exporter, exporters in random order. Records are
 * built beforehand so only add() is timed; the store is a no-op (writes are measured by the
 * store's own tests). Reports the median of several runs.
 */

const EXPORTERS = 50;
const LINKS = 20;
const RECORDS_PER_RUN = 1_000_000;
const RUNS = 7;
const RECORDS_PER_DATAGRAM = 20;
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

interface Arrival {
  rec: FlowRecord;
  exporter: string;
  receivedMs: number;
}

function buildArrivals(count: number): Arrival[] {
  const out: Arrival[] = [];
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff; // deterministic LCG: same mix every run
    return seed % n;
  };
  let ex = 0;
  let exporter = '';
  let receivedMs = T0;
  for (let i = 0; i < count; i++) {
    if (i % RECORDS_PER_DATAGRAM === 0) {
      // A new datagram: one exporter, one receive time for its records (as the collector does).
      ex = rand(EXPORTERS);
      exporter = `10.0.${ex >> 8}.${ex & 255}`;
      // ~120 s of traffic: two or three buckets touched per run.
      receivedMs = T0 + Math.floor((i * 120_000) / count);
    }
    const link = rand(LINKS);
    const kind = rand(20); // 15/20 marked, 3/20 unmarked IPv6, 2/20 IPv4
    const ipfix = (i & 1) === 0;
    const rec = emptyRecord(ipfix ? 'ipfix' : 'sflow', `${exporter}:${ipfix ? 4739 : 6343}`, 0);
    rec.inIf = link + 1;
    rec.outIf = 100 + ((link * 7) % LINKS);
    if (kind < 15) {
      const [c, a] = PAIRS[kind]!;
      rec.ipVersion = 6;
      rec.flowLabel = encodeFlowLabel(c, a, rand(32));
    } else {
      rec.ipVersion = kind < 18 ? 6 : 4;
      rec.flowLabel = kind < 18 ? 0 : undefined;
    }
    if (ipfix) {
      rec.bytes = 1_000 + rand(1_000_000);
      rec.packets = 1 + rand(1000);
      rec.samplingRate = 1000;
      rec.exportMs = receivedMs - 3_600_000; // an exporter clock an hour off
      rec.endMs = rec.exportMs - rand(5_000);
      rec.startMs = rec.endMs - rand(30_000);
    } else {
      rec.bytes = 64 + rand(1500);
      rec.packets = 1;
      rec.samplingRate = 4096;
    }
    out.push({ rec, exporter, receivedMs });
  }
  return out;
}

export async function benchAggregate(): Promise<{ recordsPerSec: number }> {
  const registry = loadSnapshot(0);
  const arrivals = buildArrivals(RECORDS_PER_RUN);
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const agg = createAggregator({}, { now: () => T0, store: nullStore, registry: () => registry });
    const t0 = process.hrtime.bigint();
    for (const a of arrivals) agg.add(a.rec, a.receivedMs, a.exporter);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push(RECORDS_PER_RUN / seconds);
    if (agg.stats().foldedByCardinality !== 0) throw new Error('bench mix exceeded the key cap');
    await agg.flush();
  }
  return { recordsPerSec: Math.round(median(rates)) };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchAggregate().then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
