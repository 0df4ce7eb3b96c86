import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSampleConfig } from '../../src/config/sample.js';
import { repoRoot } from './root.js';

// `npm run gen:config`: rewrites deploy/config.yaml from the option table (a development
// tool, so it lives beside the tests; test/unit/config-table.test.ts fails while it is stale).
const target = join(repoRoot(), 'deploy', 'config.yaml');
writeFileSync(target, renderSampleConfig());
process.stdout.write(`wrote ${target}\n`);
