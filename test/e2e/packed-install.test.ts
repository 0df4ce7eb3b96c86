/**
 * What an operator gets from `npm pack`: the tarball installed globally into a scratch prefix
 * (`npm install -g --prefix`, production dependencies from the npm registry or its cache,
 * native modules built against the running Node), then `ingest` and `serve` run from an
 * empty directory, so nothing of this checkout (dist/, test/, node_modules/) can help.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { replayDatagrams } from '../../collectors/replay.js';
import type { IngestDocument } from '../../src/commands/ingest.js';
import { freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { expectedTotals, fixturePath, loadTruth } from '../support/expected.js';
import { repoRoot } from '../support/root.js';

const CAPTURE = 'ipfix_pmacct_nfprobe_flowlabel';
const scratch = mkdtempSync(join(tmpdir(), 'scitags-packed-'));
const prefix = join(scratch, 'prefix');
/** The installed package's bin (a symlink into lib/node_modules, run through its shebang). */
const bin = join(prefix, 'bin', 'scitags-collector');
const installedCli = join(prefix, 'lib', 'node_modules', 'scitags-collector', 'dist', 'src', 'cli.js');
/** `#!/usr/bin/env node` must find the Node running the tests (the suite also runs on Node 24). */
const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, SCITAGS_REGISTRY_URL: 'off' };
let files: string[] = [];

beforeAll(() => {
  // `npm test` built dist/ already (npm run build before vitest): pack without running `prepare` again.
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], {
    cwd: repoRoot(),
    encoding: 'utf8',
    env,
  });
  const packed = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  files = packed[0]!.files.map((f) => f.path).sort();
  mkdirSync(prefix);
  execFileSync(
    'npm',
    ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', join(scratch, packed[0]!.filename)],
    {
      cwd: scratch,
      env,
      stdio: 'pipe',
      timeout: 600_000,
    },
  );
}, 660_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the packed tarball', () => {
  it('ships what an operator needs and no compiled tests', () => {
    expect(files.filter((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.endsWith('.map'))).toEqual([]);
    for (const f of [
      'LICENSE',
      'README.md',
      'package.json',
      'dist/src/cli.js',
      'dist/web/index.html',
      'dist/src/pipeline/worker.js',
      'dist/collectors/batch-receive.js',
      'dist/decoders/ipfix/index.js',
      'data/registry-snapshot.json',
      'binding.gyp',
      'collectors/native/recv.c',
      'collectors/native/build.mjs',
      'deploy/config.yaml',
      'deploy/scitags-collector.service',
      'docs/performance.md',
      'dashboards/scitags-overview.json',
    ]) {
      expect(files).toContain(f);
    }
  });

  it('installs globally; `ingest` from an empty directory prints the capture truth', () => {
    const empty = mkdtempSync(join(scratch, 'ingest-'));
    const doc = JSON.parse(
      execFileSync(bin, ['ingest', fixturePath(`${CAPTURE}.pcap`)], { cwd: empty, env, encoding: 'utf8' }),
    ) as IngestDocument;
    const want = expectedTotals(loadTruth(fixturePath(`${CAPTURE}.truth.json`)));
    expect(
      new Map(doc.pairs.map((p) => [`${p.community}/${p.activity}`, { records: p.records, packets: p.packets, bytes: p.bytes }])),
    ).toEqual(want.pairs);
    expect(doc.unmarked.ipv6).toEqual(want.ipv6Unmarked);
    expect(doc.unmarked.ipv4).toEqual(want.ipv4);
    expect(doc.stats.registry.source).toBe('snapshot');
    // Nothing written where it ran.
    expect(readdirSync(empty)).toEqual([]);
  });

  it('`serve` from an empty directory receives, counts, and keeps its data under ./data', async () => {
    const empty = mkdtempSync(join(scratch, 'serve-'));
    const ports = await freePorts();
    const daemon = await startDaemon(ports, [], {}, empty, [], installedCli);
    try {
      // The batched-receive addon was built by the package's install script.
      const metrics = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
      expect(metrics).toContain(`scitags_receive_path_info{listener="ipfix",port="${ports.ipfix}",path="recvmmsg",reason=""} 1`);
      // The live page, from the package's dist/web.
      const page = await fetch(`${daemon.apiUrl}/`);
      expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
      const cap = readCaptureFile(fixturePath(`${CAPTURE}.pcap`));
      await replayDatagrams(cap.datagrams, { host: '127.0.0.1', port: ports.ipfix, speed: 0, rate: 5000, onlyDstPort: 0 });
      await waitFor(async () => {
        const ex = await getJson<{ exporters: { records: number }[] }>(`${daemon.apiUrl}/api/v1/exporters`);
        return ex.exporters.reduce((n, e) => n + e.records, 0) === 43;
      });
    } finally {
      expect(await daemon.stop('SIGTERM')).toBe(0);
    }
    expect(existsSync(join(empty, 'data', 'scitags.sqlite'))).toBe(true);
  });
});
