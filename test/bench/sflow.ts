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
  /** Median flow samples decoded per second (wall clock) over the runs. */
  samplesPerSec: number;
  /**
   * Median flow samples per CPU-second of this process (user + system). Steadier than the
   * wall-clock figure on a shared machine, and the unit DESIGN.md compares collectors in.
   */
  samplesPerCpuSec: number;
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

function medianOf(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
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
  const cpuRates: number[] = [];
  let sink = 0;
  for (let run = 0; run < runs; run++) {
    let passes = 0;
    const cpu0 = process.cpuUsage();
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
    const cpu = process.cpuUsage(cpu0);
    rates.push((passes * perPass) / seconds);
    cpuRates.push((passes * perPass) / ((cpu.user + cpu.system) / 1e6));
    await new Promise((resolve) => setImmediate(resolve)); // let GC and the event loop breathe
  }
  if (sink === 0) throw new Error('decoder produced nothing');
  const median = medianOf(rates);
  const samplesPerDatagram = perPass / datagrams.length;
  return {
    samplesPerSec: Math.round(median),
    samplesPerCpuSec: Math.round(medianOf(cpuRates)),
    datagramsPerSec: Math.round(median / samplesPerDatagram),
    nsPerSample: Math.round(1e9 / median),
    runs: rates.map(Math.round),
    samplesPerDatagram,
    file,
  };
}
