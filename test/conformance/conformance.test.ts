/**
 * Conformance over real vendor captures (issue 12): every capture of
 * ../shared/external-captures (third-party data, never copied here) decodes to the values of
 * test/conformance/expected/<name>.json, derived independently of this code (tshark 4.0 via
 * tools/conformance/tshark_expected.py, the origin projects' own tests, or a reading of the
 * bytes; each file's `source` says which). Every remaining difference is named, with its
 * reason, in known-failures.json: the test fails for a difference not on the list AND for an
 * entry that no longer matches what the decoder does (fixed: remove it), so the list only
 * shrinks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderTable, readmeWithTable, README } from './exporters-table.js';
import {
  CAPTURES_DIR,
  CONFORMANCE_DIR,
  capturesPresent,
  decodeCapture,
  differences,
  loadCatalog,
  loadExpected,
  loadKnownFailures,
  type Difference,
} from './harness.js';

const present = capturesPresent();
if (!present) {
  // Visible in the vitest output: the suite needs the shared captures beside the worktree.
  console.warn(`conformance: ${CAPTURES_DIR} is absent; the vendor-capture conformance suite is skipped`);
}

const catalog = present ? loadCatalog() : [];
const known = loadKnownFailures();

/** A difference without its reason, in a stable order, for exact comparison. */
function plain(d: readonly Difference[]): Difference[] {
  return d
    .map(({ capture, field, expected, actual }) => ({ capture, field, expected, actual }))
    .sort((a, b) => a.field.localeCompare(b.field));
}

describe.skipIf(!present)('conformance over real vendor captures (../shared/external-captures)', () => {
  it('has one expected-values file per catalogued capture, and no other', () => {
    const files = readdirSync(join(CONFORMANCE_DIR, 'expected'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .sort();
    expect(files).toEqual(catalog.map((c) => c.name).sort());
    expect(catalog.length).toBe(115);
  });

  it('names only catalogued captures in known-failures.json, each with a reason', () => {
    const names = new Set(catalog.map((c) => c.name));
    for (const k of known) {
      expect(names.has(k.capture), `${k.capture} is not in the catalog`).toBe(true);
      expect(k.why.length, `${k.capture} ${k.field}: empty reason`).toBeGreaterThan(20);
    }
  });

  for (const entry of catalog) {
    it(`${entry.name} (${entry.protocol}, ${entry.vendor})`, () => {
      const actual = decodeCapture(join(CAPTURES_DIR, `${entry.name}.pcap`));
      const got = plain(differences(entry.name, loadExpected(entry.name), actual));
      const listed = plain(known.filter((k) => k.capture === entry.name));
      // Equal both ways: a new difference is a regression; a listed one that is gone or
      // changed means the list must be updated (remove the entry when the field passes).
      expect(got, `differences of ${entry.name} vs test/conformance/known-failures.json`).toEqual(listed);
    });
  }

  it('README.md "Tested exporters" table is up to date (npm run gen:exporters)', async () => {
    const table = renderTable(catalog, loadExpected, known);
    expect(readFileSync(README, 'utf8')).toBe(await readmeWithTable(table));
  });
});
