/**
 * `npm run bench`: every throughput figure the issues ask for, printed as ONE markdown table
 * (bench | config | metric | median | spread (min–max) | runs) under a header with the
 * machine, the date and the exact command. The machine is shared and noisy: read ratios.
 *
 *   npm run bench [-- NAME ...] [--runs N] [--seconds S] [--rates LIST] [--workers LIST] [--protocols LIST]
 *
 * Names (default: all, in this order):
 *   ipfix, netflow9, sflow, ...  decode only, one core: every exported `benchXxx()` of
 *                                ipfix.ts and sflow.ts (name = Xxx lower-cased), called once
 *                                per run with { runs: 1, runMs: 1000 }; every numeric field
 *                                of its result becomes a metric row (default 5 runs)
 *   decode+aggregate             the daemon's decode path (DatagramDecoder, as the inline
 *                                decode stage) feeding the aggregator (no store), per capture
 *   aggregate                    aggregator add() alone, 50 exporters x 20 links x 15 pairs
 *   e2e                          the daemon over loopback at fixed offered rates (e2e.ts)
 *   influx                       InfluxDB writer against a private influxd (influx.ts)
 *   api                          API route latency at random decoder state sizes (api.ts)
 *   flood                        a legitimate exporter during a spoofed new-session flood:
 *                                offered / accepted / dropped, loss, API latency, RSS (flood.ts)
 * Options:
 *   --runs N         runs per figure for every bench (env SCITAGS_BENCH_RUNS; defaults:
 *                    decode 5, aggregate 3, e2e 3, influx 5 timed runs inside one call)
 *   --seconds S      e2e and flood: seconds of sending per run (default 4)
 *   --rates LIST     e2e: offered records/s, e.g. 250k,500k,1M (default)
 *   --workers LIST   e2e: --workers values (default 1,2)
 *   --protocols LIST e2e: ipfix,sflow (default) and/or netflow9
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { readCaptureFile } from '../../collectors/pcap.js';
import { useCompiledFill } from '../../decoders/ipfix/data.js';
import { createAggregator } from '../../src/aggregate/index.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS, type RecordAggregator } from '../../src/pipeline/decoder.js';
import { tuneJit } from '../../src/pipeline/jit-tuning.js';
import { Enricher } from '../../src/enrich/enricher.js';
import { Nat64Prefixes, WELL_KNOWN_NAT64_PREFIX } from '../../src/enrich/nat64.js';
import { compileSiteTable, SiteDirectory, SiteLookup } from '../../src/enrich/site-lookup.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { benchAggregate } from './aggregate.js';
import { benchApi } from './api.js';
import { type BenchOutput, type BenchRow, formatTable, machineLines, nullStore, repoRoot, rowsFromResults } from './common.js';
import { benchE2e } from './e2e.js';
import { benchFlood } from './flood.js';
import { benchInflux } from './influx.js';
import { benchMemory } from './memory.js';
import { benchReceive } from './receive.js';
import * as ipfixBenches from './ipfix.js';
import type { Proto } from './loopback.js';
import * as sflowBenches from './sflow.js';

interface Flags {
  runs: number | undefined;
  seconds: number | undefined;
  rates: number[] | undefined;
  workers: number[] | undefined;
  protocols: Proto[] | undefined;
}

type Bench = (f: Flags) => Promise<BenchOutput>;

// ---------------------------------------------------------------------------------------
// Decode only: every zero-argument benchXxx() of ipfix.ts and sflow.ts
// ---------------------------------------------------------------------------------------

type DecodeBench = (o?: { runs?: number; runMs?: number }) => Promise<unknown> | unknown;

/** benchIpfix -> ipfix, benchNetflow9 -> netflow9, benchSflow -> sflow, benchIe315 -> ie315. */
function decodeBenches(): Map<string, DecodeBench> {
  const found = new Map<string, DecodeBench>();
  for (const mod of [ipfixBenches, sflowBenches] as Record<string, unknown>[]) {
    for (const [name, fn] of Object.entries(mod)) {
      // Options-only benches (a defaulted parameter: length 0); helpers that need arguments are not benches.
      if (!/^bench[A-Z0-9]/.test(name) || typeof fn !== 'function' || fn.length !== 0) continue;
      found.set(name.slice('bench'.length).toLowerCase(), fn as DecodeBench);
    }
  }
  const order = ['ipfix', 'netflow9', 'sflow'];
  return new Map([...found].sort(([a], [b]) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b)));
}

function decodeBench(name: string, fn: DecodeBench): Bench {
  return async (f) => {
    const results: unknown[] = [];
    for (let i = 0; i < (f.runs ?? 5); i++) results.push(await fn({ runs: 1, runMs: 1000 }));
    return rowsFromResults(`decode: ${name}`, '', results);
  };
}

// ---------------------------------------------------------------------------------------
// Decode + aggregate: the daemon's path without the socket
// ---------------------------------------------------------------------------------------

const DECODE_AGGREGATE_CAPTURES: [string, string][] = [
  ['ipfix', 'ipfix_pmacct_nfprobe_flowlabel.pcap'],
  ['netflow9', 'netflow9_pmacct_flowlabel.pcap'],
  ['sflow', 'sflow_pmacct_sfprobe_rate1.pcap'],
];

/**
 * The capture's datagrams decoded by a DatagramDecoder with the daemon's options (what the
 * inline decode stage does) and every record handed to Aggregator.add() (null store, one
 * open bucket: receive time fixed), in a loop; records/s per 1 s run after a 1 s warm-up.
 */
/**
 * What sits between the decoder and the aggregator: 'enriched' is the daemon (the Enricher:
 * NAT64 flag, no site map), 'sites' the daemon with a CRIC-sized site map (site lookups and
 * the site-pair aggregator), 'bare' the aggregator alone (the enrichment's cost by difference).
 */
type Enrichment = 'enriched' | 'sites' | 'bare';

/** A site map shaped like CRIC's: 600 sites with IPv4 /16-/24 and IPv6 /32-/64 prefixes, one of them holding the captures' hosts. */
function benchSiteTable(dir: SiteDirectory): SiteLookup {
  const prefixes: Record<string, string[]> = {};
  for (let i = 0; i < 600; i++) {
    prefixes[`SITE-${i}`] = [`${10 + (i % 200)}.${i % 256}.0.0/${16 + (i % 9)}`, `2001:${(0x100 + i).toString(16)}::/${32 + (i % 5) * 8}`];
  }
  prefixes['CAPTURES'] = ['2001:db8::/32', '192.0.2.0/24', '10.0.0.0/8'];
  return new SiteLookup(compileSiteTable(prefixes, undefined, dir));
}

async function decodeAggregate(file: string, runs: number, compiledFill = true, enrichment: Enrichment = 'enriched'): Promise<number[]> {
  useCompiledFill(compiledFill);
  const { datagrams } = readCaptureFile(join(repoRoot(), 'test', 'fixtures', file));
  if (datagrams.length === 0) throw new Error(`no UDP datagrams in ${file}`);
  const t0 = Date.UTC(2025, 0, 1, 12, 0, 0);
  const registry = loadSnapshot(t0);
  const traffic = createAggregator({}, { now: () => t0, store: nullStore, registry: () => registry });
  const sitePairs = createAggregator({ keyBy: 'sites' }, { now: () => t0, store: nullStore, registry: () => registry });
  const nat64 = new Nat64Prefixes([WELL_KNOWN_NAT64_PREFIX]);
  const agg: RecordAggregator =
    enrichment === 'bare'
      ? traffic
      : new Enricher(nat64, traffic, sitePairs, enrichment === 'sites' ? benchSiteTable(new SiteDirectory(1000)) : undefined);
  const decoder = new DatagramDecoder(DEFAULT_DECODER_OPTIONS);
  const loopFor = (ms: number): number => {
    const start = process.hrtime.bigint();
    const end = start + BigInt(ms) * 1_000_000n;
    const before = decoder.totals.records;
    let now = start;
    while (now < end) {
      for (let k = 0; k < 20; k++) {
        // The daemon's path: the decoder hands records straight to the aggregator.
        for (const d of datagrams) decoder.decodeInto(d.payload, d.srcAddr, d.srcPort, t0, 'any', agg);
      }
      now = process.hrtime.bigint();
    }
    return ((decoder.totals.records - before) / Number(now - start)) * 1e9;
  };
  loopFor(1000);
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    rates.push(loopFor(1000));
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (decoder.totals.records === 0) throw new Error(`${file}: nothing decoded`);
  await traffic.flush();
  await sitePairs.flush();
  useCompiledFill(true);
  return rates;
}

const benchDecodeAggregate: Bench = async (f) => {
  const rows: BenchRow[] = [];
  for (const [proto, file] of DECODE_AGGREGATE_CAPTURES) {
    rows.push({
      bench: `decode+aggregate: ${proto}`,
      config: '',
      metric: 'recordsPerSec',
      unit: 'records/s',
      samples: await decodeAggregate(file, f.runs ?? 5),
    });
    // Side by side: without the enrichment step, and with a CRIC-sized site map.
    rows.push({
      bench: `decode+aggregate: ${proto}`,
      config: 'no enrichment (aggregator only)',
      metric: 'recordsPerSec',
      unit: 'records/s',
      samples: await decodeAggregate(file, f.runs ?? 5, true, 'bare'),
    });
    rows.push({
      bench: `decode+aggregate: ${proto}`,
      config: 'site map (600 sites, site pairs summed)',
      metric: 'recordsPerSec',
      unit: 'records/s',
      samples: await decodeAggregate(file, f.runs ?? 5, true, 'sites'),
    });
    // Side by side: the same path with fillRecord instead of the compiled fills (sFlow has none).
    if (proto !== 'sflow') {
      rows.push({
        bench: `decode+aggregate: ${proto}`,
        config: 'fillRecord (no compiled fill)',
        metric: 'recordsPerSec',
        unit: 'records/s',
        samples: await decodeAggregate(file, f.runs ?? 5, false),
      });
    }
  }
  return {
    rows,
    notes: [
      `decode+aggregate: DatagramDecoder (daemon options) -> Enricher (NAT64 flag; sites when a map is given) -> Aggregator.add(), null store; captures ${DECODE_AGGREGATE_CAPTURES.map(([, c]) => c).join(', ')}`,
    ],
  };
};

// ---------------------------------------------------------------------------------------
// The benches
// ---------------------------------------------------------------------------------------

const BENCHES: Record<string, Bench> = {
  ...Object.fromEntries([...decodeBenches()].map(([name, fn]) => [name, decodeBench(name, fn)])),
  'decode+aggregate': benchDecodeAggregate,
  api: () => benchApi(),
  flood: (f) => benchFlood(f.seconds !== undefined ? { seconds: f.seconds } : {}),
  aggregate: async (f) => {
    const results: unknown[] = [];
    for (let i = 0; i < (f.runs ?? 3); i++) results.push(await benchAggregate());
    const out = rowsFromResults('aggregate (add only)', '', results);
    out.notes.push(
      'aggregate (add only): each run is itself the median of 7 passes over 1M prepared records (50 exporters x 20 links x 15 pairs)',
    );
    return out;
  },
  e2e: async (f) => {
    const r = await benchE2e({
      ...(f.runs !== undefined ? { runs: f.runs } : {}),
      ...(f.seconds !== undefined ? { seconds: f.seconds } : {}),
      ...(f.rates !== undefined ? { rates: f.rates } : {}),
      ...(f.workers !== undefined ? { workers: f.workers } : {}),
      ...(f.protocols !== undefined ? { protocols: f.protocols } : {}),
    });
    return { rows: r.rows, notes: r.notes };
  },
  // RSS with 1,000 exporters x 10 templates and 100,000 live keys, for 1 and 2 workers.
  memory: async (f) => {
    const workers = f.workers ?? [1, 2];
    const out: BenchOutput = { rows: [], notes: [] };
    for (const w of workers) {
      const results: Record<string, unknown>[] = [];
      for (let i = 0; i < (f.runs ?? 1); i++) results.push(await benchMemory({ workers: [w] }));
      // Strip the "wN: " prefix so every worker count shares metric names.
      const plain = results.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k.replace(/^w\d+: /, ''), v])));
      const part = rowsFromResults('memory: 1,000 exporters, 10,000 templates, 100,000 keys', `workers=${w}`, plain);
      out.rows.push(...part.rows);
      out.notes.push(...part.notes);
    }
    return out;
  },
  // CPU per received datagram: native recvmmsg against the node:dgram fallback.
  receive: async (f) => {
    const results: unknown[] = [];
    for (let i = 0; i < (f.runs ?? 1); i++) results.push(await benchReceive());
    return rowsFromResults('receive (loopback, 1,400-octet datagrams)', '', results);
  },
  influx: async (f) => {
    const r = await benchInflux(f.runs !== undefined ? { runs: f.runs } : {});
    // pointsPerRecord (the 10k records/s headline) is one of the amplification rows below.
    const { runs, amplification, assumptions, pointsPerRecord: _headline, ...scalars } = r;
    const out = rowsFromResults('influx', '', [scalars]);
    // The per-run figures are the samples of the two throughput rows.
    for (const row of out.rows) {
      if (row.metric === 'bucketsPerSec') row.samples = runs.map((x) => x.bucketsPerSec);
      if (row.metric === 'pointsPerSec') row.samples = runs.map((x) => x.pointsPerSec);
    }
    for (const a of amplification) {
      out.rows.push({
        bench: 'influx',
        config: `${a.recordsPerSec.toLocaleString('en-US')} records/s`,
        metric: 'pointsPerRecord',
        unit: 'points/record',
        samples: [a.pointsPerRecord],
      });
    }
    out.notes.push(`influx: ${assumptions}`);
    return out;
  },
};

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

const USAGE = `usage: npm run bench [-- NAME ...] [--runs N] [--seconds S] [--rates 250k,500k,1M] [--workers 1,2] [--protocols ipfix,sflow]
names: ${Object.keys(BENCHES).join(', ')}`;

function list(raw: string | undefined, what: string, parse: (s: string) => number): number[] | undefined {
  if (raw === undefined) return undefined;
  const xs = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(parse);
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x <= 0))
    throw new Error(`--${what}: positive numbers, comma-separated, got ${JSON.stringify(raw)}\n${USAGE}`);
  return xs;
}

/** 250k -> 250000, 1M -> 1000000, 1.5M -> 1500000. */
function parseRate(s: string): number {
  const m = /^([\d.]+)\s*([kKmM]?)$/.exec(s);
  if (!m) return NaN;
  return Math.round(Number(m[1]) * (m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1e6));
}

function parseFlags(argv: string[]): { names: string[]; flags: Flags } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      runs: { type: 'string' },
      seconds: { type: 'string' },
      rates: { type: 'string' },
      workers: { type: 'string' },
      protocols: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const runsRaw = values.runs ?? process.env.SCITAGS_BENCH_RUNS;
  const runs = runsRaw === undefined ? undefined : Number(runsRaw);
  if (runs !== undefined && (!Number.isInteger(runs) || runs < 1))
    throw new Error(`--runs (or SCITAGS_BENCH_RUNS) must be a positive integer, got ${JSON.stringify(runsRaw)}`);
  const seconds = values.seconds === undefined ? undefined : Number(values.seconds);
  if (seconds !== undefined && !(seconds > 0 && seconds <= 600))
    throw new Error(`--seconds must be in (0, 600], got ${JSON.stringify(values.seconds)}`);
  const protocols = values.protocols
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const p of protocols ?? [])
    if (!['ipfix', 'netflow9', 'sflow'].includes(p)) throw new Error(`--protocols: unknown ${JSON.stringify(p)} (ipfix, netflow9, sflow)`);
  return {
    names: positionals,
    flags: {
      runs,
      seconds,
      rates: list(values.rates, 'rates', parseRate),
      workers: list(values.workers, 'workers', Number)?.map((w) => Math.round(w)),
      protocols: protocols as Proto[] | undefined,
    },
  };
}

async function main(): Promise<void> {
  // The daemon's inlining budgets (cli.ts does the same), so the in-process rows measure its code.
  tuneJit();
  const argv = process.argv.slice(2);
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
    return;
  }
  const { names: wanted, flags } = parsed;
  const names = wanted.length > 0 ? wanted : Object.keys(BENCHES);
  const unknown = names.filter((n) => !BENCHES[n]);
  if (unknown.length > 0) {
    process.stderr.write(`unknown bench ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  const shown = argv.map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' ');
  const command =
    process.env.npm_lifecycle_event === 'bench'
      ? `npm run bench${shown ? ` -- ${shown}` : ''}`
      : `node --expose-gc dist/test/bench/run.js ${shown}`.trim();
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const started = Date.now();
  for (const name of names) {
    const t = Date.now();
    process.stderr.write(`bench ${name} ...\n`);
    try {
      const out = await BENCHES[name]!(flags);
      rows.push(...out.rows);
      notes.push(...out.notes);
    } catch (err) {
      process.exitCode = 1;
      const msg = err instanceof Error ? err.message : String(err);
      notes.push(`${name}: FAILED: ${msg.split('\n')[0]}`);
      process.stderr.write(`bench ${name} failed: ${err instanceof Error ? (err.stack ?? msg) : msg}\n`);
    }
    process.stderr.write(`bench ${name}: ${((Date.now() - t) / 1000).toFixed(0)} s\n`);
  }
  const lines = [
    '# npm run bench',
    '',
    `command: \`${command}\``,
    ...machineLines(),
    `benches: ${names.join(', ')} (${((Date.now() - started) / 1000).toFixed(0)} s); median and min–max over the runs`,
    '',
    ...formatTable(rows),
    '',
    ...notes.map((n) => `- ${n}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
