/**
 * InfluxDB writer throughput and write amplification (issue 6, "Speed"), against a private
 * Debian influxd 1.x (test/support/influxd.ts) on loopback, through the real store
 * (createInfluxStore -> rowsToPoints -> batched, spooling writer -> node-influx HTTP).
 *
 * Realistic mix: 50 exporters x 20 links x 15 registered experiment/activity pairs, 60 s
 * buckets. One bucket = the rows the aggregator hands the store when it closes:
 *   per link: 15 `scitags` rows + 1 `ipv6_unmarked` + 1 `ipv4` = 17 rows,
 *   per bucket: 50 x 20 x 17 = 17,000 rows -> 15,000 scitags_traffic points +
 *   50 x 20 x 3 = 3,000 link_traffic points = 18,000 points.
 * Link k of an exporter is the interface pair (in ifIndex k, out ifIndex 100+k), named and
 * given a capacity in the configuration (so link names and capacities are looked up too).
 *
 * Throughput: whole buckets written back to back (writeRows awaited per bucket, default
 * batch size 5,000 points), median over several runs; the first bucket (which creates all
 * 18,000 series in influxd) is timed apart. influxd's CPU comes from /proc.
 *
 * Write amplification: points written (the writer's own counter) per record received, for
 * a bucket whose `records` are spread uniformly at random over the 17,000 keys at a given
 * overall record rate (60 s x rate records per bucket); keys that got no record produce no
 * row, as in the aggregator. Not counted: late-data rewrites (a late record re-writes its
 * whole bucket: +18,000 points each time it happens) and collector_stats (1 + 50 exporters
 * points per 60 s by default).
 *
 * Runnable alone after `npm run build`:
 *   node -e "import('./dist/test/bench/influx.js').then(m => m.benchInflux()).then(r => console.log(JSON.stringify(r, null, 1)))"
 */
import { createLogger } from '../../src/log.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { influxStoreSchema, type LinkConfig } from '../../src/config/schema.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { createInfluxStore } from '../../src/store/influx/store.js';
import type { TrafficRow } from '../../src/store/types.js';
import { startInfluxd } from '../support/influxd.js';
import { BENCH_PAIRS as PAIRS } from './common.js';

const EXPORTERS = 50;
const LINKS = 20;
const BUCKET_SECONDS = 60;
const ROWS_PER_LINK = PAIRS.length + 2;
const KEYS = EXPORTERS * LINKS * ROWS_PER_LINK;

function exporterAddress(e: number): string {
  return `192.0.2.${e + 1}`;
}

function linkConfigs(): LinkConfig[] {
  const links: LinkConfig[] = [];
  for (let e = 0; e < EXPORTERS; e++) {
    for (let l = 0; l < LINKS; l++) {
      const exporter = exporterAddress(e);
      links.push({ exporter, ifIndex: l + 1, name: `r${e + 1}-wan${l + 1}`, capacityBps: 100e9 });
      links.push({ exporter, ifIndex: 100 + l + 1, name: `r${e + 1}-lan${l + 1}`, capacityBps: 100e9 });
    }
  }
  return links;
}

/**
 * One bucket's rows. `recordsPerKey[i]` gives key i's record count (0 = key absent from the
 * bucket); bytes and packets follow from it (1 MB, 700 packets per record on average).
 */
function bucketRows(bucketStartMs: number, recordsPerKey: Uint32Array): TrafficRow[] {
  const rows: TrafficRow[] = [];
  let i = 0;
  for (let e = 0; e < EXPORTERS; e++) {
    const exporter = exporterAddress(e);
    for (let l = 0; l < LINKS; l++) {
      for (let k = 0; k < ROWS_PER_LINK; k++, i++) {
        const records = recordsPerKey[i]!;
        if (records === 0) continue;
        const pair = PAIRS[k];
        rows.push({
          bucketStartMs,
          bucketSeconds: BUCKET_SECONDS,
          exporter,
          inIf: l + 1,
          outIf: 100 + l + 1,
          trafficClass: pair ? 'scitags' : k === PAIRS.length ? 'ipv6_unmarked' : 'ipv4',
          community: pair ? pair[0] : null,
          activity: pair ? pair[1] : null,
          registered: pair !== undefined,
          bytes: records * 1_000_000 + i,
          packets: records * 700,
          records,
        });
      }
    }
  }
  return rows;
}

/** `total` records thrown uniformly at random over the keys (deterministic PRNG). */
function spread(total: number): Uint32Array {
  const counts = new Uint32Array(KEYS);
  let seed = 12345;
  for (let r = 0; r < total; r++) {
    // mulberry32: the low bits of a plain LCG would leave most keys empty.
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    counts[((x ^ (x >>> 14)) >>> 0) % KEYS]!++;
  }
  return counts;
}

function medianOf(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

export interface InfluxBenchOptions {
  /** Timed runs (default 5) of `bucketsPerRun` buckets each (default 10). */
  runs?: number;
  bucketsPerRun?: number;
  /** Overall record rates for the amplification figures (default 1k, 10k, 100k records/s). */
  rates?: number[];
}

export interface InfluxBenchResult {
  rowsPerBucket: number;
  pointsPerBucket: number;
  /** The first bucket: creates every series. */
  firstBucketMs: number;
  bucketsPerSec: number;
  pointsPerSec: number;
  runs: { bucketsPerSec: number; pointsPerSec: number }[];
  /** influxd CPU and the collector-side (this process) CPU per bucket, medians. */
  influxdCpuMsPerBucket: number;
  writerCpuMsPerBucket: number;
  amplification: { recordsPerSec: number; recordsPerBucket: number; rows: number; points: number; pointsPerRecord: number }[];
  /** Points per record at 10k records/s (the headline). */
  pointsPerRecord: number;
  /** Sanity check: scitags_traffic points InfluxDB holds for one bucket. */
  checkedPoints: number;
  assumptions: string;
}

export async function benchInflux(opts: InfluxBenchOptions = {}): Promise<InfluxBenchResult> {
  const runs = opts.runs ?? 5;
  const bucketsPerRun = opts.bucketsPerRun ?? 10;
  const rates = opts.rates ?? [1_000, 10_000, 100_000];
  const influxd = await startInfluxd();
  const spoolDir = mkdtempSync(join(tmpdir(), 'scitags-bench-spool-'));
  const influxdPid = Number(readFileSync(join(influxd.dataDir, 'influxd.pid'), 'utf8').trim());
  const registry = loadSnapshot(Date.now());
  const store = await createInfluxStore(influxStoreSchema.parse({ type: 'influx', url: influxd.url, database: 'bench', spoolDir }), {
    registry: () => registry,
    links: linkConfigs(),
    bucketSeconds: 60,
    log: createLogger({ level: 'warn' }).child({ component: 'store' }),
  });
  try {
    // Full buckets: every key present (10k records/s spread over 17,000 keys leaves almost none empty).
    const full = new Uint32Array(KEYS).fill(35);
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    let bucketNo = 0;
    const nextBucket = (): TrafficRow[] => bucketRows(now - ++bucketNo * BUCKET_SECONDS * 1000, full);

    const first = nextBucket();
    const rowsPerBucket = first.length;
    const p0 = store.writerStats().pointsWritten;
    let t = performance.now();
    await store.writeRows(first);
    const firstBucketMs = performance.now() - t;
    const pointsPerBucket = store.writerStats().pointsWritten - p0;

    const results: { bucketsPerSec: number; pointsPerSec: number }[] = [];
    const influxCpu: number[] = [];
    const ownCpu: number[] = [];
    for (let r = 0; r < runs; r++) {
      const buckets = Array.from({ length: bucketsPerRun }, nextBucket);
      const points0 = store.writerStats().pointsWritten;
      const icpu0 = procCpuMs(influxdPid);
      const cpu0 = process.cpuUsage();
      t = performance.now();
      for (const b of buckets) await store.writeRows(b);
      const seconds = (performance.now() - t) / 1000;
      const cpu = process.cpuUsage(cpu0);
      influxCpu.push((procCpuMs(influxdPid) - icpu0) / bucketsPerRun);
      ownCpu.push((cpu.user + cpu.system) / 1000 / bucketsPerRun);
      const points = store.writerStats().pointsWritten - points0;
      results.push({ bucketsPerSec: bucketsPerRun / seconds, pointsPerSec: points / seconds });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (store.writerStats().writeFailures > 0) throw new Error(`InfluxDB write failures: ${store.writerStats().lastError}`);

    // Write amplification at several record rates.
    const amplification: InfluxBenchResult['amplification'] = [];
    for (const rate of rates) {
      const recordsPerBucket = rate * BUCKET_SECONDS;
      const rows = bucketRows(now - ++bucketNo * BUCKET_SECONDS * 1000, spread(recordsPerBucket));
      const before = store.writerStats().pointsWritten;
      await store.writeRows(rows);
      const points = store.writerStats().pointsWritten - before;
      amplification.push({ recordsPerSec: rate, recordsPerBucket, rows: rows.length, points, pointsPerRecord: points / recordsPerBucket });
    }

    const check = await store.influx.query<{ count: number }>(
      `SELECT count(bytes) FROM scitags_traffic WHERE time = ${(now - BUCKET_SECONDS * 1000) * 1_000_000}`,
    );
    const headline = amplification.find((a) => a.recordsPerSec === 10_000) ?? amplification[0];
    return {
      rowsPerBucket,
      pointsPerBucket,
      firstBucketMs,
      bucketsPerSec: medianOf(results.map((x) => x.bucketsPerSec)),
      pointsPerSec: medianOf(results.map((x) => x.pointsPerSec)),
      runs: results,
      influxdCpuMsPerBucket: medianOf(influxCpu),
      writerCpuMsPerBucket: medianOf(ownCpu),
      amplification,
      pointsPerRecord: headline?.pointsPerRecord ?? NaN,
      checkedPoints: Number(check[0]?.count ?? 0),
      assumptions:
        `${EXPORTERS} exporters x ${LINKS} links x (${PAIRS.length} registered pairs + ipv6_unmarked + ipv4) = ${KEYS} keys/bucket; ` +
        `${BUCKET_SECONDS} s buckets; records spread uniformly over keys; no late-data rewrites; collector_stats not counted; batch size 5,000`,
    };
  } finally {
    await store.close().catch(() => {});
    await influxd.destroy();
    rmSync(spoolDir, { recursive: true, force: true });
  }
}
