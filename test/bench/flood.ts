import type { BenchOutput, BenchRow } from './common.js';
import { runFlood } from '../support/flood.js';

/**
 * `npm run bench -- flood [--seconds S]`: issue 11's combined figure. The daemon (defaults,
 * SQLite) receives a legitimate exporter at 2,000 datagrams/s (20,000 records/s) and, at the
 * same time, a spoofing flood of new IPFIX sessions (every datagram from a fresh socket on
 * one of 1,024 127.1.x.y addresses) as fast as one Node process opens them, for S seconds
 * (default 4), while GET /api/v1/exporters and /api/v1/traffic are requested in turn
 * (test/support/flood.ts). Prints offered / accepted / dropped datagrams by reason, the
 * legitimate exporter's loss, API latency (median, p99) and the daemon's peak RSS. One run:
 * the figures are counts, and the latency percentiles come from every request of the run.
 */
export async function benchFlood(o: { seconds?: number } = {}): Promise<BenchOutput> {
  const seconds = o.seconds ?? 4;
  const r = await runFlood({ seconds, legitRate: 2000, floodAddresses: 1024 });
  const config = `${seconds} s, legitimate 2,000 datagrams/s + new-session flood from 1,024 addresses`;
  const row = (metric: string, unit: string, value: number): BenchRow => ({ bench: 'flood', config, metric, unit, samples: [value] });
  const rows: BenchRow[] = [
    row('offered datagrams (legitimate + flood)', 'datagrams', r.offered.total),
    row('offered by the flood', 'datagrams', r.offered.flood),
    row('flood rate offered', 'datagrams/s', r.offered.flood / seconds),
    row('accepted (decoded, not rate-limited)', 'datagrams', r.accepted),
    row('dropped: kernel (socket buffer full)', 'datagrams', r.dropped.kernel),
    row('dropped: decode queue full', 'datagrams', r.dropped.queue),
    row('dropped: rate-limit', 'datagrams', r.dropped.rateLimit),
    row('dropped: session-rate-limit', 'datagrams', r.dropped.sessionRateLimit),
    row('legitimate exporter loss (records stored vs sent)', '%', r.legit.lossPercent),
    row('GET /api/v1/exporters median', 'ms', r.api.exporters.medianMs),
    row('GET /api/v1/exporters p99', 'ms', r.api.exporters.p99Ms),
    row('GET /api/v1/traffic median', 'ms', r.api.traffic.medianMs),
    row('GET /api/v1/traffic p99', 'ms', r.api.traffic.p99Ms),
    row('peak RSS (VmHWM)', 'MB', r.peakRssBytes / 1e6),
  ];
  const notes = [
    `flood: ${r.api.exporters.requests} + ${r.api.traffic.requests} API requests during the flood; legitimate ${r.legit.stored} / ${r.legit.sent * 10} records stored; ` +
      `every offered datagram accounted for: ${r.settled ? 'yes' : 'NO (timed out)'}; send errors ${JSON.stringify(r.sendErrors)}`,
  ];
  return { rows, notes };
}
