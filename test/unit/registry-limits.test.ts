/**
 * Registry downloads are bounded: a size cap enforced while the body streams, one timeout for
 * the whole answer, and refreshes that never overlap. Every refusal keeps the registry in use
 * and is counted by reason. Real HTTP over loopback (node:http), no mocks.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics/index.js';
import { snapshotPath } from '../../src/registry/loader.js';
import { fetchTextWithTimeout, RegistryService } from '../../src/registry/service.js';
import { captureLog } from '../support/logs.js';

const snapshotText = readFileSync(snapshotPath(), 'utf8');
const MB = 1024 * 1024;

/** Writes `total` bytes of JSON-ish filler with backpressure (the server never buffers), until the client leaves. */
async function stream(res: ServerResponse, total: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  let sent = 0;
  let gone = false;
  res.once('close', () => (gone = true));
  while (sent < total && !gone) {
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
    sent += chunk.length;
  }
  if (!gone) res.end();
}

describe('registry download limits', () => {
  let server: Server;
  let base = '';
  let requests = 0;
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    '/ok.json': (_q, res) => setTimeout(() => res.end(snapshotText), 200),
    '/huge-chunked.json': (_q, res) => void stream(res, 100 * MB),
    '/huge-declared.json': (_q, res) => {
      res.writeHead(200, { 'content-length': String(100 * MB) });
      void stream(res, 100 * MB);
    },
    '/drip.json': (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{');
      const t = setInterval(() => res.write(' '), 50);
      res.once('close', () => clearInterval(t));
    },
    '/silent.json': () => undefined,
  };
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      routes[req.url ?? '']!(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const service = (path: string, timeoutMs = 5000, log = silentLogger()) =>
    new RegistryService(
      { url: `${base}${path}`, refreshSeconds: 3600, cacheFile: '', timeoutMs, maxBytes: 4 * MB },
      { now: () => 1000, fetchText: fetchTextWithTimeout, log },
    );

  it('refuses a 100 MB answer as soon as it passes 4 MiB, with bounded memory, keeping the registry in use', async () => {
    const captured = captureLog('warn');
    const svc = service('/huge-chunked.json', 30_000, captured.log);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const t0 = Date.now();
    const ok = await svc.refresh();
    const ms = Date.now() - t0;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(ok).toBe(false);
    expect(ms).toBeLessThan(3000);
    // 4 MiB held at most, plus stream buffers; the 100 MB body would be ~100 MB (and its string 200 MB).
    expect(peak - before).toBeLessThan(40 * MB);
    expect(svc.registry.source).toBe('snapshot');
    expect(svc.status()).toMatchObject({ failures: 1, failuresByReason: { oversize: 1 } });
    expect(svc.status().lastError).toBe(`answer from ${base}/huge-chunked.json is larger than 4194304 bytes`);
    expect(captured.lines).toEqual([
      {
        level: 'warn',
        msg: `registry refresh from ${base}/huge-chunked.json failed, keeping snapshot copy: answer from ${base}/huge-chunked.json is larger than 4194304 bytes`,
        url: `${base}/huge-chunked.json`,
        source: 'snapshot',
        reason: 'oversize',
        failures: 1,
      },
    ]);
  }, 20_000);

  it('refuses a declared Content-Length above the cap before reading the body', async () => {
    const svc = service('/huge-declared.json');
    const t0 = Date.now();
    expect(await svc.refresh()).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(svc.status().failuresByReason.oversize).toBe(1);
  });

  it('cuts a slow-drip answer at the total timeout, not at an idle gap', async () => {
    const svc = service('/drip.json', 600);
    const t0 = Date.now();
    expect(await svc.refresh()).toBe(false);
    const ms = Date.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(550);
    expect(ms).toBeLessThan(2000);
    expect(svc.status().lastError).toBe(`no complete answer from ${base}/drip.json within 600 ms`);
    expect(svc.status().failuresByReason).toEqual({ oversize: 0, timeout: 1, http: 0, network: 0, invalid: 0 });
  });

  it('times out a server that never answers', async () => {
    const svc = service('/silent.json', 300);
    const t0 = Date.now();
    expect(await svc.refresh()).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(svc.status().failuresByReason.timeout).toBe(1);
  });

  it('overlapping refreshes share one download', async () => {
    const svc = service('/ok.json');
    const n0 = requests;
    const calls = [svc.refresh(), svc.refresh(), svc.refresh(), svc.refresh(), svc.refresh()];
    expect(new Set(calls).size).toBe(1);
    expect(await Promise.all(calls)).toEqual([true, true, true, true, true]);
    expect(requests - n0).toBe(1);
    expect(svc.status()).toMatchObject({ refreshes: 1, failures: 0, source: 'download' });
    // Once it finished, the next call downloads again.
    expect(await svc.refresh()).toBe(true);
    expect(requests - n0).toBe(2);
  });

  it('exports the refusals by reason', async () => {
    const svc = service('/drip.json', 200);
    await svc.refresh();
    await svc.refresh();
    const m = createMetrics({ registryStatus: () => svc.status(), now: () => 1000 });
    const lines = (await m.registry.metrics()).split('\n').filter((l) => l.startsWith('scitags_registry_refresh_failures_total'));
    expect(lines).toEqual([
      'scitags_registry_refresh_failures_total{reason="oversize"} 0',
      'scitags_registry_refresh_failures_total{reason="timeout"} 2',
      'scitags_registry_refresh_failures_total{reason="http"} 0',
      'scitags_registry_refresh_failures_total{reason="network"} 0',
      'scitags_registry_refresh_failures_total{reason="invalid"} 0',
    ]);
  });
});
