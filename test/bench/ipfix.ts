/**
 * IPFIX and NetFlow v9 decode throughput: capture datagrams decoded in a loop with their
 * templates known (decode only: no pcap parsing, no aggregation inside the timed loop),
 * reported as the median records/s over several timed runs on one core.
 *
 * IPFIX replays test/fixtures/ipfix_pmacct_nfprobe_flowlabel.pcap. NetFlow v9 replays
 * test/fixtures/netflow9_*.pcap when one is there; otherwise a builder-made v9 stream with
 * pmacct's v9 layout (the same fields as its IPFIX template 2048, uptimes for times) and
 * 5 records per datagram like pmacct's. PSAMP replays test/fixtures/ipfix_softflowd_psamp.pcap
 * (one IE 315 frame per record, walked to the flow label and ports).
 *
 * Three modes: array with address strings (the `decode` CLI), array without them, and the
 * streaming sink without them (FlowDecodeOptions.onRecord: one reused record, nothing
 * allocated per record), which is what the daemon uses.
 *
 * Runnable alone after `npm run build`:
 *   node -e "import('./dist/test/bench/ipfix.js').then(async m => console.log(await m.benchIpfix(), await m.benchNetflow9(), await m.benchPsamp()))"
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readCaptureFile, type CapturedDatagram } from '../../collectors/pcap.js';
import { createFlowDecoderState, decodeFlowDatagram, type FlowDecodeOptions } from '../../decoders/ipfix/index.js';
import { encodeFlowLabel } from '../../decoders/scitags/flowlabel.js';
import { f, v9DataFlowset, v9Message, v9TemplateFlowset } from '../builders/ipfix.js';
import { median, repoRoot } from './common.js';

/** What the bench needs of a datagram: capture datagrams, or builder-made ones. */
type UdpDatagram = Pick<CapturedDatagram, 'timeMs' | 'srcAddr' | 'srcPort' | 'payload'>;

export interface FlowBenchOptions {
  file?: string;
  /** Timed runs (default 5) and the length of each (default 1000 ms). */
  runs?: number;
  runMs?: number;
  /** NetFlow v9: use the builder-made stream even when a capture is there. */
  synthetic?: boolean;
}

export interface FlowBenchResult {
  /** Median records/s with default options (addresses formatted as strings). */
  recordsPerSec: number;
  /** Median records/s with `withAddresses: false` (what aggregation needs). */
  recordsPerSecNoAddresses: number;
  /** Median records/s through the sink (`onRecord`, `withAddresses: false`): the daemon's mode. */
  recordsPerSecSink: number;
  /**
   * The same per CPU-second of this process (user + system): steadier than wall clock on a
   * shared machine, and the unit the collectors are compared in (DESIGN.md).
   */
  recordsPerCpuSecSink: number;
  nsPerRecord: number;
  runs: number[];
  recordsPerPass: number;
  datagramsPerPass: number;
  source: string;
}

interface Measured {
  rates: number[];
  cpuRates: number[];
  perPass: number;
}

function measure(datagrams: readonly UdpDatagram[], base: FlowDecodeOptions, useSink: boolean, runs: number, runMs: number): Measured {
  const state = createFlowDecoderState();
  let sink = 0;
  // The sink reads a field so the work cannot be optimized away; it keeps nothing.
  const opts: FlowDecodeOptions = useSink ? { ...base, onRecord: (rec) => void (sink += rec.bytes) } : base;
  let perPass = 0;
  for (const d of datagrams) {
    perPass += decodeFlowDatagram(d.payload, { exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs }, state, opts).stats
      .records;
  }
  const ctxs = datagrams.map((d) => ({ exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs }));
  // Warm-up so the JIT has optimized the decoder before timing.
  for (let i = 0; i < 300; i++) for (let k = 0; k < datagrams.length; k++) decodeFlowDatagram(datagrams[k]!.payload, ctxs[k]!, state, opts);
  const rates: number[] = [];
  const cpuRates: number[] = [];
  for (let run = 0; run < runs; run++) {
    let records = 0;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let elapsed = 0;
    while (elapsed < runMs * 1e6) {
      for (let i = 0; i < 50; i++) {
        for (let k = 0; k < datagrams.length; k++) {
          const r = decodeFlowDatagram(datagrams[k]!.payload, ctxs[k]!, state, opts);
          records += r.stats.records;
          if (!useSink) sink += r.records.length > 0 ? r.records[0]!.bytes : 0;
        }
      }
      elapsed = Number(process.hrtime.bigint() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    rates.push((records / elapsed) * 1e9);
    cpuRates.push(records / ((cpu.user + cpu.system) / 1e6));
  }
  if (sink < 0) console.log(sink);
  return { rates, cpuRates, perPass };
}

function bench(datagrams: readonly UdpDatagram[], source: string, o: FlowBenchOptions): FlowBenchResult {
  const runs = o.runs ?? 5;
  const runMs = o.runMs ?? 1000;
  const full = measure(datagrams, {}, false, runs, runMs);
  const bare = measure(datagrams, { withAddresses: false }, false, runs, runMs);
  const streamed = measure(datagrams, { withAddresses: false }, true, runs, runMs);
  const rps = median(full.rates);
  return {
    recordsPerSec: Math.round(rps),
    recordsPerSecNoAddresses: Math.round(median(bare.rates)),
    recordsPerSecSink: Math.round(median(streamed.rates)),
    recordsPerCpuSecSink: Math.round(median(streamed.cpuRates)),
    nsPerRecord: Math.round(1e9 / rps),
    runs: full.rates.map(Math.round),
    recordsPerPass: full.perPass,
    datagramsPerPass: datagrams.length,
    source,
  };
}

export async function benchIpfix(o: FlowBenchOptions = {}): Promise<FlowBenchResult> {
  const file = o.file ?? join(repoRoot(), 'test', 'fixtures', 'ipfix_pmacct_nfprobe_flowlabel.pcap');
  const { datagrams } = readCaptureFile(file);
  if (datagrams.length === 0) throw new Error(`no UDP datagrams in ${file}`);
  return bench(datagrams, file, o);
}

/** pmacct-like v9 stream: one template datagram, then data datagrams of 5 records. */
function syntheticV9(): UdpDatagram[] {
  const fields = [
    f('flowEndSysUpTime', 4),
    f('flowStartSysUpTime', 4),
    f('octetDeltaCount', 8),
    f('packetDeltaCount', 8),
    f('ipVersion', 1),
    f('ingressInterface', 4),
    f('egressInterface', 4),
    f('flowDirection', 1),
    f('sourceIPv6Address', 16),
    f('destinationIPv6Address', 16),
    f('ipClassOfService', 1),
    f('sourceTransportPort', 2),
    f('destinationTransportPort', 2),
    f('tcpControlBits', 1),
    f('protocolIdentifier', 1),
    f('vlanId', 2),
    f('flowLabelIPv6', 3),
  ];
  const out: UdpDatagram[] = [];
  const mk = (seq: number, flowsets: Uint8Array[], records: number): UdpDatagram => ({
    timeMs: 1_700_000_000_000 + seq,
    srcAddr: '127.0.0.1',
    srcPort: 40000,
    payload: v9Message({ records, seq, sourceId: 11 }, flowsets),
  });
  out.push(mk(0, [v9TemplateFlowset([{ id: 1024, fields }])], 1));
  for (let s = 1; s <= 20; s++) {
    const recs = Array.from({ length: 5 }, (_, i) => [
      3_599_000,
      3_500_000,
      1000 * (s + i),
      10 + i,
      6,
      3,
      0,
      0,
      `2001:db8:20::${s}`,
      `2001:db8:10::${i + 1}`,
      0,
      50000 + i,
      2811,
      0x18,
      6,
      100,
      encodeFlowLabel(2 + (i % 3), 1 + s, i),
    ]);
    out.push(mk(s, [v9DataFlowset(1024, fields, recs)], 5));
  }
  return out;
}

export async function benchNetflow9(o: FlowBenchOptions = {}): Promise<FlowBenchResult> {
  let file = o.file;
  if (file === undefined && o.synthetic !== true) {
    const dir = join(repoRoot(), 'test', 'fixtures');
    const found = existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => /^netflow9.*\.pcap$/.test(n))
          .sort()
      : [];
    if (found.length > 0) file = join(dir, found[0]!);
  }
  if (file === undefined) return bench(syntheticV9(), 'synthetic pmacct-like NetFlow v9 (builder)', o);
  const { datagrams } = readCaptureFile(file);
  if (datagrams.length === 0) throw new Error(`no UDP datagrams in ${file}`);
  return bench(datagrams, file, o);
}

/** IE 315 (PSAMP dataLinkFrameSection): softflowd's packet reports, one frame walked per record. */
export async function benchPsamp(o: FlowBenchOptions = {}): Promise<FlowBenchResult> {
  const file = o.file ?? join(repoRoot(), 'test', 'fixtures', 'ipfix_softflowd_psamp.pcap');
  const { datagrams } = readCaptureFile(file);
  if (datagrams.length === 0) throw new Error(`no UDP datagrams in ${file}`);
  return bench(datagrams, file, o);
}
