import { writeFileSync } from 'node:fs';
import { renderTable, readmeWithTable, README } from '../conformance/exporters-table.js';
import { capturesPresent, CAPTURES_DIR, loadCatalog, loadExpected, loadKnownFailures } from '../conformance/harness.js';

// `npm run gen:exporters`: rewrites the "Tested exporters" table of README.md from the
// capture catalog, the expected values and the known-failures list (a development tool
// beside the tests; test/conformance/conformance.test.ts fails while the table is stale).
if (!capturesPresent()) {
  process.stderr.write(`gen:exporters: ${CAPTURES_DIR} is absent (the catalog names the exporters)\n`);
  process.exit(1);
}
const table = renderTable(loadCatalog(), loadExpected, loadKnownFailures());
writeFileSync(README, await readmeWithTable(table));
process.stdout.write(`wrote the Tested exporters table of ${README}\n`);
