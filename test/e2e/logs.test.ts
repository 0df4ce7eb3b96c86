import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { replayDatagrams } from '../../collectors/replay.js';
import { DEFAULT_RECEIVE_BUFFER_BYTES } from '../../src/config/schema.js';
import { CLI, freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { fixturePath } from '../support/expected.js';

type Line = Record<string, unknown> & { level: string; msg: string; time: string; component?: string };
type Exporters = { exporters: { address: string; datagrams: number }[] };

/** Every non-empty line of the daemon's output, parsed; a line that is not JSON fails the test. */
function jsonLines(output: string): Line[] {
  return output
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Line;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
}

describe('serve logs', () => {
  it('are JSON lines: start-up (receive buffer per listener), debug decode events from the workers, the access log, shutdown', async () => {
    const ports = await freePorts();
    const daemon = await startDaemon(ports, ['--log-level=debug', '--access-log', '--workers=2']);
    let code: number | null;
    try {
      // truth (corpus README): 9 datagrams, 43 records
      const ipfix = readCaptureFile(fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap')).datagrams;
      await replayDatagrams(ipfix, { host: '127.0.0.1', port: ports.ipfix, speed: 0, rate: 2000, onlyDstPort: 0 });
      await waitFor(async () => (await getJson<Exporters>(`${daemon.apiUrl}/api/v1/exporters`)).exporters.some((e) => e.datagrams === 9));
      await fetch(`${daemon.apiUrl}/health`);
    } finally {
      code = await daemon.stop();
    }
    expect(code).toBe(0);
    const lines = jsonLines(daemon.output());
    for (const l of lines) {
      expect(l).toMatchObject({
        level: expect.stringMatching(/^(trace|debug|info|warn|error|fatal)$/),
        msg: expect.any(String),
        component: expect.any(String),
      });
      expect(new Date(l.time).toISOString()).toBe(l.time);
    }
    const by = (component: string, msg: string | RegExp): Line[] =>
      lines.filter((l) => l.component === component && (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));

    // Info is start-up and shutdown only (plus the access log that was asked for).
    expect(
      lines
        .filter((l) => l.level === 'info' && l.component !== 'access')
        .map((l) => `${l.component}: ${l.msg.replace(daemon.cwd, 'CWD').replace(/\d+/g, 'N')}`),
    ).toEqual([
      'serve: starting',
      'registry: using the snapshot copy, N experiments',
      'api: Server listening at http://N.N.N.N:N',
      'serve: listening for ipfix on udp/[::]:N',
      'serve: listening for netflow on udp/[::]:N',
      'serve: listening for sflow on udp/[::]:N',
      'serve: decoding on N worker threads (exporters sharded by address)',
      'serve: store: sqlite CWD/data/scitags.sqlite', // the data directory, resolved
      'serve: API: http://N.N.N.N:N/ (the live page; REST at /api/vN, documentation at /docs/, metrics at /metrics)',
      'serve: stopping: draining the queue and writing open buckets',
      'serve: stopped after N datagrams, N records, N decode errors',
    ]);
    // The receive buffer the kernel granted, per listener (Linux reports twice the usable size).
    for (const name of ['ipfix', 'netflow', 'sflow']) {
      const [l] = by('serve', new RegExp(`^listening for ${name} `));
      expect(l).toMatchObject({
        listener: name,
        receiveBufferAskedBytes: DEFAULT_RECEIVE_BUFFER_BYTES,
        receiveBufferBytes: expect.any(Number),
      });
      expect(l!.receiveBufferBytes as number).toBeGreaterThan(0);
    }
    expect(by('serve', /^stopped after/)[0]).toMatchObject({ datagrams: 9, records: 43, decodeErrors: 0 });

    // Debug from the decode workers, handed to the main thread: the worker named on each line.
    expect(
      by('decode', /^decode worker \d started$/)
        .map((l) => l.worker)
        .sort(),
    ).toEqual([0, 1]);
    const [first] = by('decode', 'exporter 127.0.0.1 first seen');
    expect(first).toMatchObject({ level: 'debug', exporter: '127.0.0.1', listener: 'ipfix', worker: expect.any(Number) });
    const learnt = by('decode', /^template \d+ learnt$/);
    // pmacct's nfprobe: data templates 1024/1025 and 2048/2049, options template 4098, all in domain 11
    // (records decode with templates 1024 and 2048: `scitags-collector decode` of the capture).
    expect(learnt.map((l) => [l.templateId, l.kind, l.domain, l.exporter, l.worker]).sort()).toEqual([
      [1024, 'data', 11, '127.0.0.1', first!.worker],
      [1025, 'data', 11, '127.0.0.1', first!.worker],
      [2048, 'data', 11, '127.0.0.1', first!.worker],
      [2049, 'data', 11, '127.0.0.1', first!.worker],
      [4098, 'options', 11, '127.0.0.1', first!.worker],
    ]);
    // Shutdown writes the open bucket: one store batch at debug, with its size and time.
    expect(by('aggregate', 'store batch written')[0]).toMatchObject({
      level: 'debug',
      store: 'sqlite',
      rows: expect.any(Number),
      ms: expect.any(Number),
    });

    // The access log: one line per request, the test's own API polling included.
    const health = by('access', 'GET /health 200');
    expect(health).toEqual([
      {
        level: 'info',
        time: expect.any(String),
        component: 'access',
        method: 'GET',
        url: '/health',
        status: 200,
        responseTimeMs: expect.any(Number),
        remoteAddress: '127.0.0.1',
        reqId: expect.stringMatching(/^req-/),
        msg: 'GET /health 200',
      },
    ]);
    expect(by('access', /^GET \/api\/v1\/exporters 200$/).length).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('--log-format pretty gives human lines, not JSON', async () => {
    const ports = await freePorts();
    const daemon = await startDaemon(ports, ['--log-format=pretty', '--workers=1']);
    expect(await daemon.stop(), daemon.output()).toBe(0);
    const lines = daemon
      .output()
      .split('\n')
      .filter((l) => l !== '');
    for (const l of lines) expect(() => JSON.parse(l)).toThrow();
    // Not a terminal: no colour codes.
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: serve: listening for ipfix on udp\/\[::\]:\d+ \{"listener":"ipfix",.*"receiveBufferBytes":\d+/,
      ),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: serve: stopped after 0 datagrams, 0 records, 0 decode errors /),
    );
  }, 60_000);

  it('SCITAGS_LOG_FORMAT=pretty works as the flag does, and a bad format is refused at start', async () => {
    const ports = await freePorts();
    const daemon = await startDaemon(ports, ['--workers=1'], { SCITAGS_LOG_FORMAT: 'pretty' });
    expect(await daemon.stop()).toBe(0);
    expect(daemon.output()).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: serve: starting /);
    await expect(startDaemon(await freePorts(), ['--log-format=xml'])).rejects.toThrow(
      /flag --log-format: log\.format: must be "json" or "pretty"/,
    );
  }, 60_000);

  it('a start-up failure is one fatal JSON line, and the process exits 1 (worker threads closed)', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const cwd = mkdtempSync(join(tmpdir(), 'scitags-logs-'));
      const args = [CLI, 'serve', '--ipfix-port=0', '--netflow-port=0', '--sflow-port=0', `--api-port=${port}`, '--workers=2'];
      const r = spawnSync(process.execPath, args, {
        cwd,
        env: { ...process.env, SCITAGS_REGISTRY_URL: 'off' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      const lines = jsonLines(r.stderr);
      expect(lines.at(-1)).toMatchObject({
        level: 'fatal',
        component: 'serve',
        msg: `could not start: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
        err: { type: 'Error', code: 'EADDRINUSE', port },
      });
    } finally {
      taken.close();
    }
  }, 60_000);
});
