/**
 * sFlow decode throughput: the pmacct sfprobe capture's datagrams decoded in a loop (raw
 * headers walked to the L4 ports, one FlowRecord per flow sample), reported as the median
 * flow samples/s over several timed runs on one core. Decode only: no pcap parsing, no
 * aggregation inside the timed loop.
 *
 * Wired into `npm run bench` by the lead; runnable alone after `npm run build` with
 *   node -e "import('./dist/test/bench/sflow.js').then(m => m.benchSflow()).then(r => console.log(r))"
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSflowState, decodeSflow } from '../../decoders/sflow/index.js';
import { readPcapUdpTemp } from '../builders/sflow.js';

export interface SflowBenchOptions {
  /** Capture to replay (default test/fixtures/sflow_pmacct_sfprobe_rate1.pcap). */
  file?: string;
  /** Timed runs (default 5) and the length of each (default 1000 ms). */
  runs?: number;
  runMs?: number;
}

export interface SflowBenchResult {
  /** Median flow samples decoded per second over the runs. */
  samplesPerSec: number;
  datagramsPerSec: number;
  nsPerSample: number;
  runs: number[];
  samplesPerDatagram: number;
  file: string;
}

/** The repository root: the nearest ancestor holding package.json (works from src and dist). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the bench');
    dir = up;
  }
}

export async function benchSflow(opts: SflowBenchOptions = {}): Promise<SflowBenchResult> {
  const file = opts.file ?? join(repoRoot(), 'test', 'fixtures', 'sflow_pmacct_sfprobe_rate1.pcap');
  const datagrams = readPcapUdpTemp(readFileSync(file));
  if (datagrams.length === 0) throw new Error(`no UDP datagrams in ${file}`);
  const runs = opts.runs ?? 5;
  const runMs = opts.runMs ?? 1000;
  const state = createSflowState();

  // Samples per pass, and a warm-up pass so the JIT has optimized the decoder.
  let perPass = 0;
  for (const d of datagrams) perPass += decodeSflow(d.payload, d.srcAddr, d.srcPort, state).records.length;
  for (let i = 0; i < 200; i++) for (const d of datagrams) decodeSflow(d.payload, d.srcAddr, d.srcPort, state);

  const rates: number[] = [];
  let sink = 0;
  for (let run = 0; run < runs; run++) {
    let passes = 0;
    const t0 = process.hrtime.bigint();
    const deadline = t0 + BigInt(runMs) * 1_000_000n;
    let now = t0;
    while (now < deadline) {
      for (let k = 0; k < 10; k++) {
        for (const d of datagrams) sink += decodeSflow(d.payload, d.srcAddr, d.srcPort, state).records.length;
      }
      passes += 10;
      now = process.hrtime.bigint();
    }
    const seconds = Number(now - t0) / 1e9;
    rates.push((passes * perPass) / seconds);
    await new Promise((resolve) => setImmediate(resolve)); // let GC and the event loop breathe
  }
  if (sink === 0) throw new Error('decoder produced nothing');
  const sorted = [...rates].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const samplesPerDatagram = perPass / datagrams.length;
  return {
    samplesPerSec: Math.round(median),
    datagramsPerSec: Math.round(median / samplesPerDatagram),
    nsPerSample: Math.round(1e9 / median),
    runs: rates.map(Math.round),
    samplesPerDatagram,
    file,
  };
}
