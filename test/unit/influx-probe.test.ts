import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { Collector } from '../../src/serve/collector.js';
import { InfluxProbe } from '../../src/store/influx/probe.js';
import { scrape, waitFor } from '../support/daemon.js';
import { freeTcpPort } from '../support/influxd.js';

/** A stand-in for InfluxDB on loopback: /ping answers `status` (undefined: never answers), anything else 204. */
async function pingServer(): Promise<{ url: string; status: { value: number | undefined }; requests: IncomingMessage[]; server: Server }> {
  const status = { value: 500 as number | undefined };
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    req.resume();
    if (!req.url?.endsWith('/ping')) {
      res.statusCode = 204; // writes (the collector's own stats at start) always succeed
      res.end();
      return;
    }
    if (status.value === undefined) return; // frozen
    res.statusCode = status.value;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix/`, status, requests, server };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

describe('InfluxProbe (GET /ping)', () => {
  it('500 is a failure (http_5xx), 204 ok again; sends the auth header to <url>/ping; a hang is a timeout; probes never overlap', async () => {
    const p = await pingServer();
    servers.push(p.server);
    const probe = new InfluxProbe(
      { url: p.url, headers: { Authorization: 'Token t0k' }, tls: { rejectUnauthorized: true }, intervalMs: 1000, timeoutMs: 300 },
      () => undefined,
    );
    expect(probe.health()).toMatchObject({ ok: undefined, probes: 0, failures: 0 });
    expect(await probe.probe()).toBe(false);
    expect(probe.health()).toEqual({
      ok: false,
      probes: 1,
      failures: 1,
      consecutiveFailures: 1,
      lastProbeMs: expect.any(Number),
      lastError: 'GET /ping answered HTTP 500',
      lastErrorClass: 'http_5xx',
      lastErrorStatus: 500,
    });
    expect(p.requests.map((r) => [r.method, r.url, r.headers.authorization])).toEqual([['GET', '/prefix/ping', 'Token t0k']]);
    // No overlap: a second probe while one is in flight sends nothing.
    p.status.value = undefined;
    const first = probe.probe();
    expect(await probe.probe()).toBe(false); // answers the last outcome
    await first;
    expect(p.requests).toHaveLength(2);
    p.status.value = 401;
    expect(await probe.probe()).toBe(false);
    expect(probe.health()).toMatchObject({ ok: false, consecutiveFailures: 3, lastErrorClass: 'http_401', lastErrorStatus: 401 });
    p.status.value = 204;
    expect(await probe.probe()).toBe(true);
    expect(probe.health()).toMatchObject({ ok: true, probes: 4, failures: 3, consecutiveFailures: 0 });
    p.status.value = undefined;
    const started = Date.now();
    expect(await probe.probe()).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(probe.health()).toMatchObject({ ok: false, probes: 5, failures: 4, lastErrorClass: 'timeout', lastErrorStatus: undefined });
  });

  it('a refused connection is class connection; no probe while a write succeeded within the interval (that counts as ok)', async () => {
    const port = await freeTcpPort();
    const lastOk = { ms: undefined as number | undefined };
    const probe = new InfluxProbe(
      { url: `http://127.0.0.1:${port}`, headers: {}, tls: { rejectUnauthorized: true }, intervalMs: 60_000, timeoutMs: 1000 },
      () => lastOk.ms,
    );
    await probe.tick();
    expect(probe.health()).toMatchObject({ ok: false, probes: 1, lastErrorClass: 'connection' });
    lastOk.ms = Date.now();
    await probe.tick();
    expect(probe.health()).toMatchObject({ ok: true, probes: 1, failures: 1, consecutiveFailures: 0 });
  });

  it('the collector: /health store_unreachable and scitags_store_probe_ok 0 while /ping answers 500, store_auth and scitags_store_auth_failed 1 while it answers 401 / 403, ok once it answers 204', async () => {
    const p = await pingServer();
    servers.push(p.server);
    // Healthy at start: a probe can run before the first /health request on a loaded machine.
    p.status.value = 204;
    const apiPort = await freeTcpPort();
    const dir = mkdtempSync(join(tmpdir(), 'scitags-probe-'));
    const config = configSchema.parse({
      dataDir: dir,
      listeners: { ipfix: [{ port: 0, bind: '127.0.0.1' }], netflow: [{ port: 0 }], sflow: [{ port: 0 }], firefly: [{ port: 0 }] },
      api: { port: apiPort, bind: '127.0.0.1' },
      store: { type: 'influx', url: p.url, createDatabase: false, probeIntervalSeconds: 1, timeoutMs: 500, spoolDir: join(dir, 'spool') },
      registry: { url: '', cacheFile: '' },
      decoder: { stateFile: '', crashDir: '', workers: 1 },
    });
    const collector = await Collector.create(config, { now: Date.now, log: silentLogger(), apiTokens: [] });
    await collector.start();
    const api = `http://127.0.0.1:${apiPort}`;
    const health = async (): Promise<{ status: string; reasons: { reason: string; metric: string; detail: string }[] }> =>
      (await (await fetch(`${api}/health`)).json()) as never;
    const probeOk = (): Promise<number> => scrape(api, 'scitags_store_probe_ok');
    try {
      expect(await health()).toMatchObject({ status: 'ok', reasons: [] });
      expect(await probeOk()).toBe(1);
      p.status.value = 500;
      await waitFor(async () => (await health()).status === 'degraded', 5000);
      expect((await health()).reasons).toEqual([
        {
          reason: 'store_unreachable',
          metric: 'scitags_store_probe_ok',
          detail: expect.stringMatching(/^InfluxDB liveness probe failed \d+ times in a row \(http_5xx\): GET \/ping answered HTTP 500$/),
        },
      ]);
      expect(await probeOk()).toBe(0);
      expect(await scrape(api, 'scitags_store_auth_failed')).toBe(0);
      // 401 / 403: InfluxDB is up and refuses the credentials, an operator problem of its own.
      for (const status of [401, 403]) {
        p.status.value = status;
        await waitFor(async () => (await health()).reasons.some((r) => r.detail.endsWith(`HTTP ${status}`)), 5000);
        expect(await health()).toEqual(
          expect.objectContaining({
            status: 'degraded',
            reasons: [
              {
                reason: 'store_auth',
                metric: 'scitags_store_auth_failed',
                detail: expect.stringMatching(
                  new RegExp(
                    `^InfluxDB refuses the credentials \\(HTTP ${status}\\): check store\\.username / password / token and the grants; liveness probe refused \\d+ times in a row: GET /ping answered HTTP ${status}$`,
                  ),
                ),
              },
            ],
          }),
        );
        expect(await scrape(api, 'scitags_store_auth_failed')).toBe(1);
        expect(await probeOk()).toBe(1);
      }
      p.status.value = 204;
      await waitFor(async () => (await health()).status === 'ok', 5000);
      expect((await health()).reasons).toEqual([]);
      expect(await probeOk()).toBe(1);
      expect(await scrape(api, 'scitags_store_auth_failed')).toBe(0);
      expect(p.requests.filter((r) => r.url === '/prefix/ping').length).toBeGreaterThanOrEqual(2);
    } finally {
      await collector.stop();
    }
  }, 20_000);
});
