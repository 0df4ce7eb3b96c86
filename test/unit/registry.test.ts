import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSnapshot, snapshotPath } from '../../src/registry/loader.js';
import { validateRegistryDocument } from '../../src/registry/schema.js';
import { fetchTextWithTimeout, RegistryService } from '../../src/registry/service.js';
import { silentLogger } from '../../src/log.js';
import { captureLog } from '../support/logs.js';

const snapshotText = readFileSync(snapshotPath(), 'utf8');

describe('registry snapshot', () => {
  it('ships the 2025-09-04 registry: 14 experiments with names', () => {
    const reg = loadSnapshot(0);
    expect(reg.experimentCount).toBe(14);
    expect(reg.source).toBe('snapshot');
    expect(reg.modified).toBe('2025-09-04T12:01:55.844133+00:00');
    expect(reg.communityName(2)).toBe('atlas');
    expect(reg.communityName(14)).toBe('xenon');
    expect(reg.names(2, 2)).toEqual({ communityName: 'atlas', activityName: 'perfSONAR', registered: true });
    expect(reg.names(1, 1)).toEqual({ communityName: 'default', activityName: 'default', registered: true });
  });

  it('flags unregistered pairs and keeps known community names', () => {
    const reg = loadSnapshot(0);
    expect(reg.names(200, 10)).toEqual({ communityName: undefined, activityName: undefined, registered: false });
    expect(reg.names(511, 63).registered).toBe(false);
    expect(reg.names(2, 63)).toEqual({ communityName: 'atlas', activityName: undefined, registered: false });
  });
});

describe('registry validation', () => {
  const good = JSON.parse(snapshotText) as { experiments: { expId: number; activities: { activityId: number }[] }[] };

  it('accepts the published document', () => {
    expect(validateRegistryDocument(good).experiments.length).toBe(14);
  });

  it('rejects ids that do not fit the label, duplicates and the misspelt schema key', () => {
    const tooBig = structuredClone(good);
    tooBig.experiments[0]!.expId = 512;
    expect(() => validateRegistryDocument(tooBig)).toThrow(/experiments\.0\.expId/);
    const dup = structuredClone(good);
    dup.experiments[1]!.expId = dup.experiments[0]!.expId;
    expect(() => validateRegistryDocument(dup)).toThrow(/duplicate expId 1/);
    const badAct = structuredClone(good);
    badAct.experiments[0]!.activities[0]!.activityId = 64;
    expect(() => validateRegistryDocument(badAct)).toThrow(/activities\.0\.activityId/);
    expect(() => validateRegistryDocument({ experiments: [{ expName: 'x', expID: 3, activities: [] }] })).toThrow(/expId/);
    expect(() => validateRegistryDocument({ experiments: [] })).toThrow(/experiments/);
  });
});

describe('RegistryService refresh over real HTTP', () => {
  let server: Server;
  let base = '';
  let body = '';
  let status = 200;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const deps = { now: () => 1000, fetchText: fetchTextWithTimeout, log: silentLogger() };

  it('installs a valid download, saves it, and a restart offline uses the cache', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reg-'));
    const cacheFile = join(dir, 'registry.json');
    const doc = JSON.parse(snapshotText) as { experiments: { expName: string; expId: number; activities: unknown[] }[] };
    doc.experiments.push({ expName: 'newexp', expId: 300, activities: [{ activityName: 'Bulk', activityId: 5 }] });
    body = JSON.stringify(doc);
    status = 200;
    const captured = captureLog('debug');
    // A day after the snapshot's `modified` stamp: the age logged is the registry content's.
    const now = Date.parse('2025-09-05T12:01:55.844Z');
    const svc = new RegistryService(
      { url: base, refreshSeconds: 3600, cacheFile, timeoutMs: 2000 },
      { ...deps, now: () => now, log: captured.log },
    );
    expect(svc.registry.source).toBe('snapshot');
    expect(await svc.refresh()).toBe(true);
    expect(captured.lines).toEqual([
      {
        level: 'info',
        msg: 'using the snapshot copy, 14 experiments',
        source: 'snapshot',
        experiments: 14,
        modified: '2025-09-04T12:01:55.844133+00:00',
        ageSeconds: 86400,
      },
      {
        level: 'debug',
        msg: 'registry refreshed',
        url: base,
        source: 'download',
        experiments: 15,
        modified: '2025-09-04T12:01:55.844133+00:00',
        ageSeconds: 86400,
        bytes: body.length,
      },
    ]);
    expect(svc.registry.source).toBe('download');
    expect(svc.registry.names(300, 5)).toEqual({ communityName: 'newexp', activityName: 'Bulk', registered: true });
    expect(JSON.parse(readFileSync(cacheFile, 'utf8'))).toEqual(doc);

    // offline restart (no URL): the cache, not the snapshot
    const offline = new RegistryService({ url: '', refreshSeconds: 3600, cacheFile, timeoutMs: 2000 }, deps);
    expect(offline.registry.source).toBe('cache');
    expect(offline.registry.communityName(300)).toBe('newexp');
  });

  it('keeps the last good copy when a download is invalid, not JSON, or fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reg-'));
    const cacheFile = join(dir, 'registry.json');
    const captured = captureLog('warn');
    const svc = new RegistryService({ url: base, refreshSeconds: 3600, cacheFile, timeoutMs: 2000 }, { ...deps, log: captured.log });
    body = '{"experiments": [{"expName": "x", "expId": 9999, "activities": []}]}';
    expect(await svc.refresh()).toBe(false);
    body = '<html>maintenance</html>';
    expect(await svc.refresh()).toBe(false);
    status = 503;
    body = '';
    expect(await svc.refresh()).toBe(false);
    expect(svc.registry.source).toBe('snapshot');
    expect(svc.registry.communityName(2)).toBe('atlas');
    expect(svc.status().failures).toBe(3);
    expect(svc.status().lastError).toMatch(/HTTP 503/);
    // Three failures inside the rate-limit interval: one line.
    expect(captured.lines).toEqual([
      {
        level: 'warn',
        msg: expect.stringMatching(/^registry refresh from http:\/\/127\.0\.0\.1:\d+\/api\.json failed, keeping snapshot copy: /),
        url: base,
        source: 'snapshot',
        reason: 'invalid',
        failures: 1,
      },
    ]);
    expect(svc.status().failuresByReason).toEqual({ oversize: 0, timeout: 0, http: 1, network: 0, invalid: 2 });
  });

  it('ignores a corrupt cache file and starts from the snapshot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'reg-'));
    const cacheFile = join(dir, 'registry.json');
    writeFileSync(cacheFile, '{"experiments": "oops"}');
    const captured = captureLog('warn');
    const svc = new RegistryService({ url: '', refreshSeconds: 3600, cacheFile, timeoutMs: 2000 }, { ...deps, log: captured.log });
    expect(svc.registry.source).toBe('snapshot');
    expect(captured.lines).toEqual([{ level: 'warn', msg: expect.stringMatching(/^ignoring registry cache: /), cacheFile }]);
  });
});
