/**
 * `npm run fuzz` (node dist/test/fuzz/run.js --seconds 60 [--seed N] [--save]): the mutation
 * fuzzer for longer than npm test gives it. Prints the figures as JSON; exits 1 on any oracle
 * violation (each printed with its input in hex). --save adds the interesting inputs to
 * test/fuzz/corpus/ of the source tree.
 */
import { parseArgs } from 'node:util';
import { addToCorpus, readCorpus } from './corpus.js';
import { fuzz } from './engine.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string', default: String(Date.now() % 1e9) },
    save: { type: 'boolean' },
  },
});
const seconds = Number(values.seconds);
const seed = Number(values.seed);
const report = fuzz({ seconds, seed, known: readCorpus().map((e) => e.signature) });
const added = values.save ? addToCorpus(report.findings) : 0;
const summary = {
  seed,
  seconds: Number(report.seconds.toFixed(1)),
  executions: report.executions,
  executionsPerSecond: Math.round(report.executions / report.seconds),
  seeds: report.seeds,
  captures: report.captures,
  signatures: report.signatures,
  newSignatures: report.findings.length,
  addedToCorpus: added,
  violations: report.violations.length,
  heapGrowthMB: Number((report.heapGrowthBytes / 1048576).toFixed(1)),
  sharedExporters: report.sharedExporters,
  byMutation: report.byMutation,
};
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
for (const v of report.violations) {
  process.stdout.write(
    `VIOLATION (${v.seed.capture} ${v.seed.srcAddr}:${v.seed.srcPort}): ${v.problem}\n  ${Buffer.from(v.input).toString('hex')}\n`,
  );
}
process.exitCode = report.violations.length > 0 ? 1 : 0;
