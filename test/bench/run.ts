/**
 * `npm run bench`: every throughput figure the issues ask for, as medians over several
 * timed runs on one core (the machine is shared and noisy: read ratios, not absolutes).
 * Usage: npm run bench [-- NAME ...]   (names: ipfix, netflow9, sflow, aggregate, e2e, influx)
 */
import { benchAggregate } from './aggregate.js';
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
