import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readStateDocument } from '../../src/serve/decoder-state-file.js';
import { legitDatagram, orphanData, probeDaemon, runProbe, wideTemplates } from '../support/budget-probes.js';

const MiB = 1024 * 1024;

/** Printed for the README's "Budgets" figures (run with BUDGET_PROBE_REPORT=1 for each sample). */
function report(name: string, r: Awaited<ReturnType<typeof runProbe>>): void {
  console.log(
    `${name}: sent ${r.sent} datagrams in ${r.ms} ms; legitimate ${r.legitRecords}/${r.legitExpected} records ` +
      `(stored ${r.stored}); peak state ${r.peakStateBytes} of ${r.budgetBytes} bytes; RSS ${Math.round(r.rssBytes / MiB)} MiB; ` +
      `evictions ${JSON.stringify(r.evictions)}`,
  );
}

describe('decoder state budgets under heavy floods (issue 11 probes)', () => {
  it('(a) 20,000 spoofed new sessions from 1,024 addresses against the default table: no legitimate record lost', async () => {
    const { sqlite, start, args } = await probeDaemon(['--workers=2', '--decoder-max-sessions=1000']);
    const r = await runProbe(start, sqlite, {
      sessions: 20_000,
      addresses: 1024,
      hostile: () => [legitDatagram(0, 1)],
      legitDatagrams: 5000,
      args,
    });
    report('spoof flood', r);
    expect(r.exitCode).toBe(0);
    expect(r.legitRecords).toBe(50_000);
    expect(r.stored).toBe(50_000);
    expect(r.legit).toMatchObject({ liveTemplates: 1, decoderState: { evictions: 0 } });
  });

  it('(b) 256 sessions x 96 templates x 512 fields at a 64 MiB budget: state and RSS bounded, buckets written at SIGTERM', async () => {
    const budget = 64 * MiB;
    const { sqlite, start, args } = await probeDaemon(['--workers=2', `--decoder-state-budget-bytes=${budget}`]);
    const r = await runProbe(start, sqlite, {
      sessions: 256,
      addresses: 16,
      // 8 datagrams of 12 templates x 512 enterprise fields (~49 KB each): 6.3 MB of state per
      // session, 1.6 GB for all of them if nothing were bounded.
      hostile: () => Array.from({ length: 8 }, (_, k) => wideTemplates(256 + 12 * k, 12, 512)),
      legitDatagrams: 500,
      args,
    });
    report('wide templates', r);
    expect(r.exitCode).toBe(0);
    expect(r.peakStateBytes).toBeLessThanOrEqual(budget);
    expect(r.legitRecords).toBe(5000);
    expect(r.stored).toBe(5000);
    expect(r.rssBytes).toBeLessThan(1024 * MiB);
  });

  it('(c) 1 MiB of data before template in each of 512 sessions at a 32 MiB budget: held bytes bounded, state saved', async () => {
    const budget = 32 * MiB;
    const { sqlite, start, args } = await probeDaemon([
      '--workers=1',
      `--decoder-state-budget-bytes=${budget}`,
      '--decoder-max-buffered-bytes-per-session=1048576',
    ]);
    const r = await runProbe(start, sqlite, {
      sessions: 512,
      addresses: 64,
      hostile: (s) => Array.from({ length: 32 }, (_, k) => orphanData(300 + ((s + k) % 100), 32_768)),
      legitDatagrams: 200,
      args,
    });
    report('data before template', r);
    expect(r.exitCode).toBe(0);
    expect(r.peakStateBytes).toBeLessThanOrEqual(budget);
    expect(r.legitRecords).toBe(2000);
    expect(r.stored).toBe(2000);
    const doc = readStateDocument(readFileSync(join(r.cwd, 'data', 'decoder-state.json')));
    expect(doc.sessions[0]).toMatchObject({ address: '127.0.0.1' });
    expect(r.output).not.toContain('saving decoder state');
  });
});
