/**
 * Every start-up failure releases what was already opened (sockets, worker threads, the store,
 * timers) and exits 1 within seconds with one fatal line naming the reason. A process that
 * kept a socket, a worker thread or a timer would not exit, and the bounded wait would fail.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from '../support/daemon.js';

interface Outcome {
  code: number | null;
  ms: number;
  fatal: Record<string, unknown>[];
  lastLine: Record<string, unknown>;
}

/** Runs `serve` with the given flags, killing it after `limitMs`; every line is JSON. */
async function serveUntilExit(args: string[], limitMs = 15_000, cwd = mkdtempSync(join(tmpdir(), 'scitags-startup-'))): Promise<Outcome> {
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      ...(args.includes('-c') ? [] : ['--ipfix-port=0', '--netflow-port=0', '--sflow-port=0', '--firefly-port=0', '--api-port=0']),
      ...args,
    ],
    {
      cwd,
      env: { ...process.env, SCITAGS_REGISTRY_URL: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  const lines = out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, ms: Date.now() - started, fatal: lines.filter((l) => l.level === 'fatal'), lastLine: lines.at(-1) ?? {} };
}

function expectFailedStart(o: Outcome, msg: string): void {
  expect(o.code).toBe(1);
  expect(o.ms).toBeLessThan(10_000);
  expect(o.fatal).toHaveLength(1);
  expect(o.lastLine).toMatchObject({ level: 'fatal', component: 'serve', msg });
}

async function tcpPortTaken(): Promise<{ port: number; close: () => void }> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as { port: number }).port, close: () => s.close() };
}

async function udpPortTaken(): Promise<{ port: number; close: () => void }> {
  // udp6 dual-stack, as the listener binds '::': the conflict is on the same address.
  const s = createSocket({ type: 'udp6', ipv6Only: false });
  await new Promise<void>((r) => s.bind(0, '::', () => r()));
  return { port: s.address().port, close: () => s.close() };
}

describe('start-up failures exit 1 with one fatal line', () => {
  it('API port in use, after the UDP sockets and two worker threads opened', async () => {
    const taken = await tcpPortTaken();
    try {
      const o = await serveUntilExit([
        '--ipfix-port=0',
        '--sflow-port=0',
        `--api-port=${taken.port}`,
        '--api-bind=127.0.0.1',
        '--workers=2',
      ]);
      expectFailedStart(o, `could not start: listen EADDRINUSE: address already in use 127.0.0.1:${taken.port}`);
    } finally {
      taken.close();
    }
  }, 30_000);

  it('a second UDP port in use, after the first listener bound and the API listens', async () => {
    const taken = await udpPortTaken();
    try {
      const cwd = mkdtempSync(join(tmpdir(), 'scitags-startup-'));
      const api = await tcpPortTaken();
      api.close();
      const free = await udpPortTaken();
      free.close();
      const o = await serveUntilExit(
        [`--ipfix-port=${free.port}`, `--sflow-port=${taken.port}`, `--api-port=${api.port}`, '--api-bind=127.0.0.1', '--workers=2'],
        15_000,
        cwd,
      );
      expectFailedStart(
        o,
        expect.stringMatching(
          new RegExp(`^could not start: cannot receive UDP on :: port ${taken.port}: .*(Address already in use|EADDRINUSE)`),
        ) as unknown as string,
      );
    } finally {
      taken.close();
    }
  }, 30_000);

  it('a UDP bind address that is not local (192.0.2.1)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'scitags-startup-'));
    const free = await udpPortTaken();
    free.close();
    writeFileSync(
      join(cwd, 'c.yaml'),
      `listeners:\n  ipfix:\n    - port: ${free.port}\n  netflow:\n    - port: 0\n  sflow:\n    - port: 16343\n      bind: 192.0.2.1\napi:\n  port: 0\n`,
    );
    const o = await serveUntilExit(['-c', 'c.yaml'], 15_000, cwd);
    expectFailedStart(
      o,
      expect.stringMatching(
        /^could not start: cannot receive UDP on 192\.0\.2\.1 port 16343: .*(Cannot assign requested address|EADDRNOTAVAIL)/,
      ) as unknown as string,
    );
  }, 30_000);

  it('an API bind address that is not local (192.0.2.1)', async () => {
    const o = await serveUntilExit(['--api-port=18080', '--api-bind=192.0.2.1', '--sflow-port=0', '--workers=2']);
    expectFailedStart(o, 'could not start: listen EADDRNOTAVAIL: address not available 192.0.2.1:18080');
  }, 30_000);

  it('an unwritable store path (its directory is a file)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'scitags-startup-'));
    writeFileSync(join(cwd, 'afile'), '');
    const o = await serveUntilExit([`--store-path=${join(cwd, 'afile', 'x.sqlite')}`], 15_000, cwd);
    expectFailedStart(
      o,
      `could not start: cannot open the SQLite store ${cwd}/afile/x.sqlite: ENOTDIR: not a directory, mkdir '${cwd}/afile'`,
    );
  }, 30_000);

  it('a store path under /proc (no 100 % CPU spin in mkdir)', async () => {
    const o = await serveUntilExit(['--store-path=/proc/scitags-nowhere/x.sqlite', '--workers=2']);
    expectFailedStart(
      o,
      "could not start: cannot open the SQLite store /proc/scitags-nowhere/x.sqlite: ENOENT: no such file or directory, mkdir '/proc/scitags-nowhere'",
    );
  }, 30_000);

  it('a store file directly in /proc', async () => {
    const o = await serveUntilExit(['--store-path=/proc/scitags.sqlite']);
    expectFailedStart(o, 'could not start: cannot open the SQLite store /proc/scitags.sqlite: unable to open database file');
  }, 30_000);

  it('an unwritable data directory (under a file)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'scitags-startup-'));
    writeFileSync(join(cwd, 'afile'), '');
    const o = await serveUntilExit(['--data-dir=afile/data'], 15_000, cwd);
    expectFailedStart(
      o,
      `could not start: data directory ${cwd}/afile/data is not writable: ENOTDIR: not a directory, stat '${cwd}/afile/data'`,
    );
  }, 30_000);

  it('a data directory under /proc', async () => {
    const o = await serveUntilExit(['--data-dir=/proc/scitags-data', '--workers=2']);
    expectFailedStart(
      o,
      "could not start: data directory /proc/scitags-data is not writable: ENOENT: no such file or directory, mkdir '/proc/scitags-data'",
    );
  }, 30_000);
});
