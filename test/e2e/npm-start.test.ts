/**
 * `npm start` as the README's Quick look uses it: npm runs the collector through `sh -c`, and
 * a signal to npm must reach the collector (the script `exec`s node), which then drains,
 * writes its open buckets and exits, leaving no orphaned node process behind.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePorts } from '../support/daemon.js';
import { repoRoot } from '../support/root.js';

/** Pids of live processes whose command line contains `needle`. */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').includes(needle)) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function npmStartThen(signal: NodeJS.Signals): Promise<{ code: number | null; output: string; leftover: number[] }> {
  const ports = await freePorts();
  const dir = mkdtempSync(join(tmpdir(), 'scitags-npm-start-'));
  const marker = `--api-port=${ports.api}`;
  const npm = spawn(
    'npm',
    [
      'start',
      '--',
      `--ipfix-port=${ports.ipfix}`,
      `--netflow-port=${ports.netflow}`,
      `--sflow-port=${ports.sflow}`,
      marker,
      '--api-bind=127.0.0.1',
      `--store=sqlite:${join(dir, 'scitags.sqlite')}`,
    ],
    // npm must find the Node running the tests (the suite also runs on Node 24).
    {
      cwd: repoRoot(),
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, SCITAGS_REGISTRY_URL: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  npm.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  npm.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!output.includes('API: http') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(output).toContain('API: http');
  const collector = processesWith(marker).filter((p) => p !== npm.pid);
  expect(collector).toHaveLength(1);
  process.kill(npm.pid!, signal);
  const code = await exited;
  // npm exits when its child did; give the kernel a moment to reap.
  await new Promise((r) => setTimeout(r, 200));
  return { code, output, leftover: processesWith(marker) };
}

describe('npm start', () => {
  it('stops the collector cleanly when npm gets SIGTERM (no orphaned node)', async () => {
    const r = await npmStartThen('SIGTERM');
    expect(r.leftover).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.output).toMatch(/stopped after 0 datagrams, 0 records, 0 decode errors/);
  }, 60_000);
});
