/**
 * `npm run bench`: every throughput figure the issues ask for, as medians over several
 * timed runs on one core (the machine is shared and noisy: read ratios, not absolutes).
 * Usage: npm run bench [-- NAME ...]   (names: ipfix, netflow9, sflow, aggregate, e2e, influx)
 */
import { benchAggregate } from './aggregate.js';
import { benchE2e } from './e2e.js';
import { benchInflux } from './influx.js';
import { benchIpfix, benchNetflow9 } from './ipfix.js';
import { benchSflow } from './sflow.js';

type Bench = () => Promise<Record<string, unknown>>;

const BENCHES: Record<string, Bench> = {
  ipfix: async () => {
    const r = await benchIpfix();
    return { 'records/s': r.recordsPerSec, 'records/s (no address strings)': r.recordsPerSecNoAddresses, source: r.source };
  },
  netflow9: async () => {
    const r = await benchNetflow9();
    return { 'records/s': r.recordsPerSec, 'records/s (no address strings)': r.recordsPerSecNoAddresses, source: r.source };
  },
  sflow: async () => {
    const r = await benchSflow();
    return { 'flow samples/s': r.samplesPerSec, 'datagrams/s': r.datagramsPerSec, file: r.file };
  },
  aggregate: async () => {
    const r = await benchAggregate();
    return { 'records/s': r.recordsPerSec };
  },
  // Daemon over loopback (issue 5): several lines, one per capture, then the paced search.
  e2e: async () => {
    const r = await benchE2e();
    const out: Record<string, unknown> = {};
    for (const p of r.results) {
      const b = p.blastMedian;
      out[`${p.payload}: blast records/s accepted`] = b.recordsPerSec;
      out[`${p.payload}: sent`] = b.sent;
      out[`${p.payload}: decoded`] = b.decoded;
      out[`${p.payload}: loss %`] = b.lossPct.toFixed(1);
      out[`${p.payload}: kernel drops`] = b.kernelDrops;
      out[`${p.payload}: queue drops`] = b.queueDrops;
      out[`${p.payload}: send datagrams/s`] = b.sendRate;
      out[`${p.payload}: records/daemon-CPU-s`] = b.recordsPerDaemonCpuSec;
      out[`${p.payload}: zero-loss records/s (paced)`] = p.zeroLossRecordsPerSec;
      out[`${p.payload}: first lossy step`] = p.firstLossyRate ?? 'none up to the last step';
      out[`${p.payload}: paced steps`] = p.paced
        .map((s) => `${Math.round((s.rate * p.recordsPerDatagram) / 1000)}k:${Math.round(s.recordsPerSec / 1000)}k/loss=${s.loss}(k${s.kernelDrops}/q${s.queueDrops})/cpu=${s.daemonCpuShare.toFixed(2)}`)
        .join(' ');
    }
    if (r.cpuProfile) out['daemon hot spots (ipfix, self %)'] = r.cpuProfile.map((f) => `${f.fn} ${f.selfPct}%`).join('; ');
    return out;
  },
  influx: async () => {
    const r = await benchInflux();
    return {
      'buckets/s': r.bucketsPerSec.toFixed(2),
      'points/s': r.pointsPerSec,
      'points/bucket': r.pointsPerBucket,
      'rows/bucket': r.rowsPerBucket,
      'first bucket ms (series creation)': r.firstBucketMs,
      'influxd CPU ms/bucket': r.influxdCpuMsPerBucket,
      'writer CPU ms/bucket': r.writerCpuMsPerBucket,
      'points/record @10k rec/s': r.pointsPerRecord.toFixed(4),
      amplification: r.amplification.map((a) => `${a.recordsPerSec / 1000}k rec/s: ${a.points} pts/${a.recordsPerBucket} rec = ${a.pointsPerRecord.toFixed(4)}`).join('; '),
      'runs buckets/s': r.runs.map((x) => x.bucketsPerSec.toFixed(2)).join(' '),
      'points checked in InfluxDB': r.checkedPoints,
      assumptions: r.assumptions,
    };
  },
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const names = wanted.length > 0 ? wanted : Object.keys(BENCHES);
  for (const name of names) {
    const bench = BENCHES[name];
    if (!bench) {
      process.stderr.write(`unknown bench ${name}; known: ${Object.keys(BENCHES).join(', ')}\n`);
      process.exitCode = 2;
      return;
    }
    const result = await bench();
    const shown = Object.entries(result)
      .map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v).toLocaleString('en-US') : String(v)}`)
      .join('  ');
    process.stdout.write(`${name.padEnd(10)} ${shown}\n`);
  }
}

await main();
