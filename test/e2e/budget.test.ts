import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readStateDocument } from '../../src/serve/decoder-state-file.js';
import { legitDatagram, orphanData, probeDaemon, runProbe, wideTemplates } from '../support/budget-probes.js';

describe('decoder state budgets over loopback (issue 11 probes, light)', () => {
  it('(a) a flood of new sessions from 64 addresses: the legitimate exporter counts exactly and keeps its template', async () => {
    const { sqlite, start, args } = await probeDaemon(['--workers=1', '--decoder-max-sessions=64']);
    const r = await runProbe(start, sqlite, {
      sessions: 1500,
      addresses: 64,
      // Each spoofed session sends a template and data: it becomes "active" too.
      hostile: () => [legitDatagram(0, 1)],
      legitDatagrams: 300,
      args,
    });
    expect(r.exitCode).toBe(0);
    expect(r.legitRecords).toBe(3000);
    expect(r.stored).toBe(3000);
    expect(r.legit).toMatchObject({ liveTemplates: 1, decoderState: { evictions: 0 }, rateLimited: { datagrams: 0, sessions: 0 } });
    // The table held 64 sessions: the rest of the 1500 were refused or pushed out others idle.
    expect((r.evictions['session-refused'] ?? 0) + (r.evictions['session-lru'] ?? 0)).toBeGreaterThan(0);
  });

  it('(b) many sessions x many templates x many fields: state under the budget, evictions counted, SIGTERM writes the buckets', async () => {
    const budget = 4 * 1024 * 1024;
    const { sqlite, start, args } = await probeDaemon(['--workers=2', `--decoder-state-budget-bytes=${budget}`]);
    const r = await runProbe(start, sqlite, {
      sessions: 48,
      addresses: 4,
      // 4 datagrams of 32 templates x 128 fields: ~2 MiB of state per session if it were all kept.
      hostile: (s) => [0, 1, 2, 3].map((k) => wideTemplates(256 + 32 * k + (s % 7), 32, 128)),
      legitDatagrams: 50,
      args,
    });
    expect(r.exitCode).toBe(0);
    expect(r.budgetBytes).toBe(budget);
    expect(r.peakStateBytes).toBeGreaterThan(0);
    expect(r.peakStateBytes).toBeLessThanOrEqual(budget);
    expect((r.evictions.budget ?? 0) + (r.evictions['template-budget'] ?? 0)).toBeGreaterThan(0);
    expect(r.legitRecords).toBe(500);
    expect(r.stored).toBe(500);
    expect(r.legit?.liveTemplates).toBe(1);
  });

  it('(c) data before template from many sessions: held bytes bounded, the state file saved and readable', async () => {
    const budget = 1024 * 1024;
    const { sqlite, start, args } = await probeDaemon(['--workers=1', `--decoder-state-budget-bytes=${budget}`]);
    const r = await runProbe(start, sqlite, {
      sessions: 64,
      addresses: 8,
      // 8 x 8 KiB of data for unknown templates per session: 4 MiB offered to a 1 MiB budget.
      hostile: (s) => Array.from({ length: 8 }, (_, k) => orphanData(300 + ((s + k) % 50), 8192)),
      legitDatagrams: 20,
      args,
    });
    expect(r.exitCode).toBe(0);
    expect(r.peakStateBytes).toBeLessThanOrEqual(budget);
    expect(r.evictions['pending-budget']).toBeGreaterThan(0);
    expect(r.legitRecords).toBe(200);
    expect(r.stored).toBe(200);
    const file = join(r.cwd, 'data', 'decoder-state.json');
    expect(existsSync(file)).toBe(true);
    const doc = readStateDocument(readFileSync(file));
    // The legitimate (active) session is saved first; held data is in the file too.
    expect(doc.sessions[0]).toMatchObject({ address: '127.0.0.1' });
    expect(doc.sessions.reduce((n, s) => n + s.pending.length, 0)).toBeGreaterThan(0);
    expect(r.output).not.toContain('saving decoder state');
  });
});
