/**
 * sFlow decode throughput: the pmacct sfprobe capture's datagrams decoded in a loop (raw
 * headers walked to the L4 ports, one FlowRecord per flow sample), reported as the median
 * flow samples/s over several timed runs on one core. Decode only: no pcap parsing, no
 * aggregation inside the timed loop. Measured twice: records in `result.records` with
 * address strings (the `decode` CLI), and through the streaming sink without addresses
 * (SflowOptions.onRecord: one reused record, what the daemon uses).
 *
 * Wired into `npm run bench` by the lead; runnable alone after `npm run build` with
 *   node -e "import('./dist/test/bench/sflow.js').then(m => m.benchSflow()).then(r => console.log(r))"
 */
import { join } from 'node:path';
import { readCaptureFile } from '../../collectors/pcap.js';
import { createSflowState, decodeSflow, type SflowOptions } from '../../decoders/sflow/index.js';
import { median, repoRoot } from './common.js';

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
  /** Median flow samples/s through the sink (`onRecord`, `withAddresses: false`), and per CPU-second. */
  samplesPerSecSink: number;
  samplesPerCpuSecSink: number;
  nsPerSample: number;
  runs: number[];
  samplesPerDatagram: number;
  file: string;
}

export async function benchSflow(opts: SflowBenchOptions = {}): Promise<SflowBenchResult> {
  const file = opts.file ?? join(repoRoot(), 'test', 'fixtures', 'sflow_pmacct_sfprobe_rate1.pcap');
  const { datagrams } = readCaptureFile(file);
  if (datagrams.length === 0) throw new Error(`no UDP datagrams in ${file}`);
  const runs = opts.runs ?? 5;
  const runMs = opts.runMs ?? 1000;
  const state = createSflowState();

  // Samples per pass; each mode then warms up (so the JIT has optimized the decoder) and is timed.
  let perPass = 0;
  for (const d of datagrams) perPass += decodeSflow(d.payload, d.srcAddr, d.srcPort, state).records.length;

  let sink = 0;
  const timed = async (decodeOpts: SflowOptions | undefined): Promise<{ rates: number[]; cpuRates: number[] }> => {
    const rates: number[] = [];
    const cpuRates: number[] = [];
    for (let i = 0; i < 200; i++) for (const d of datagrams) decodeSflow(d.payload, d.srcAddr, d.srcPort, state, decodeOpts);
    for (let run = 0; run < runs; run++) {
      let passes = 0;
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const deadline = t0 + BigInt(runMs) * 1_000_000n;
      let now = t0;
      while (now < deadline) {
        for (let k = 0; k < 10; k++) {
          for (const d of datagrams) sink += decodeSflow(d.payload, d.srcAddr, d.srcPort, state, decodeOpts).records.length;
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
    return { rates, cpuRates };
  };
  const { rates, cpuRates } = await timed(undefined);
  // The sink reads a field so the work cannot be optimized away; it keeps nothing.
  const streamed = await timed({ withAddresses: false, onRecord: (rec) => void (sink += rec.packets) });
  if (sink === 0) throw new Error('decoder produced nothing');
  const rate = median(rates);
  const samplesPerDatagram = perPass / datagrams.length;
  return {
    samplesPerSec: Math.round(rate),
    samplesPerCpuSec: Math.round(median(cpuRates)),
    datagramsPerSec: Math.round(rate / samplesPerDatagram),
    samplesPerSecSink: Math.round(median(streamed.rates)),
    samplesPerCpuSecSink: Math.round(median(streamed.cpuRates)),
    nsPerSample: Math.round(1e9 / rate),
    runs: rates.map(Math.round),
    samplesPerDatagram,
    file,
  };
}
