/**
 * `node dist/test/conformance/report.js [--known-failures]`: prints every capture's
 * differences from its expected values (for whoever fixes a decoder). With
 * --known-failures, prints them as known-failures.json entries (reasons kept from the
 * committed list where capture and field match, "TODO" otherwise) to review and commit.
 */
import { loadKnownFailures, runConformance, type KnownFailure } from './harness.js';

const res = runConformance();
if (process.argv.includes('--known-failures')) {
  const old = loadKnownFailures();
  const out: KnownFailure[] = res.flatMap((r) =>
    r.differences.map((d) => ({ ...d, why: old.find((k) => k.capture === d.capture && k.field === d.field)?.why ?? 'TODO' })),
  );
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
} else {
  for (const r of res) {
    if (r.differences.length === 0) continue;
    process.stdout.write(`${r.entry.name} (errors ${JSON.stringify(r.actual.errors)})\n`);
    for (const d of r.differences)
      process.stdout.write(`  ${d.field}: expected ${JSON.stringify(d.expected)}, actual ${JSON.stringify(d.actual)}\n`);
  }
  process.stdout.write(`${res.filter((r) => r.differences.length === 0).length} of ${res.length} captures as expected\n`);
}
