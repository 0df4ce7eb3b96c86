import { silentLogger } from '../../src/log.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { influxStoreSchema } from '../../src/config/schema.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { createInfluxStore } from '../../src/store/influx/store.js';
import type { TrafficRow } from '../../src/store/types.js';

/**
 * What the InfluxDB store sends over HTTP, seen by a small recording server on loopback
 * standing in for the v1-compatible API of InfluxDB 2.x / 3.x: the API token on writes and
 * queries, and nothing but writes and queries when provisioning is turned off (those servers
 * have no CREATE DATABASE / RETENTION POLICY / CONTINUOUS QUERY; buckets and DBRP mappings
 * are made with their own tools, docs/influx-schema.md).
 */

interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const TOKEN = 'c2NpdGFncw-token==';
let server: Server;
let url = '';
const requests: Recorded[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      if (req.url?.startsWith('/write')) {
        res.writeHead(204).end();
        return;
      }
      // one empty result per statement is a valid answer to every query the store sends
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results: [{ statement_id: 0 }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  requests.length = 0;
});

const spoolDirs: string[] = [];
afterAll(() => {
  for (const d of spoolDirs) rmSync(d, { recursive: true, force: true });
});

function config(extra: Record<string, unknown>) {
  const spoolDir = mkdtempSync(join(tmpdir(), 'influx-auth-'));
  spoolDirs.push(spoolDir);
  const cfg = influxStoreSchema.parse({ type: 'influx', url, database: 'scitags', spoolDir, timeoutMs: 2000, ...extra });
  return cfg;
}

const deps = { registry: () => loadSnapshot(0), links: [], log: silentLogger(), bucketSeconds: 60 };

// one marked bucket: atlas (2) / activity 1, link 1 -> 2, 60 s at 1700000040 s
const ROW: TrafficRow = {
  bucketStartMs: 1_700_000_040_000,
  bucketSeconds: 60,
  exporter: '192.0.2.1',
  inIf: 1,
  outIf: 2,
  trafficClass: 'scitags',
  community: 2,
  activity: 1,
  registered: true,
  bytes: 1500,
  packets: 2,
  records: 1,
};

/** The InfluxQL statements a request carried (GET ?q= or a POSTed form). */
function statements(r: Recorded): string[] {
  const query = new URL(r.path, 'http://x').searchParams.get('q');
  const form =
    r.body && r.headers['content-type']?.startsWith('application/x-www-form-urlencoded') ? new URLSearchParams(r.body).get('q') : null;
  return [query, form].filter((q): q is string => q !== null);
}

describe('InfluxDB 2.x / 3.x v1-compatible API', () => {
  it('sends the token as Authorization: Token on writes and queries, no user, and no CREATE with createDatabase: false', async () => {
    const store = await createInfluxStore(config({ token: TOKEN, username: 'ignored', password: 'ignored', createDatabase: false }), deps);
    expect(requests, 'nothing is sent at start').toEqual([]);
    await store.writeRows([ROW]);
    await store.queryTraffic({ fromMs: 1_700_000_000_000, toMs: 1_700_000_600_000, stepSeconds: 60, groupBy: [] });
    await store.close();

    expect(requests.map((r) => [r.method, new URL(r.path, 'http://x').pathname])).toEqual([
      ['POST', '/write'],
      ['GET', '/query'],
      ['GET', '/query'],
    ]);
    for (const r of requests) {
      expect(r.headers.authorization, `${r.method} ${r.path}`).toBe(`Token ${TOKEN}`);
      const params = new URL(r.path, 'http://x').searchParams;
      // a token replaces the user: u/p would be read as a second, conflicting login
      expect(params.has('u') || params.has('p'), r.path).toBe(false);
      expect(r.path).not.toContain('ignored');
      expect(params.get('db')).toBe('scitags');
    }
    const write = requests[0]!;
    expect(write.body).toBe(
      'scitags_traffic,exporter=192.0.2.1,in_link=1,out_link=2,in_if=1,out_if=2,community=atlas,activity=default,community_id=2,activity_id=1 bytes=1500i,packets=2i,records=1i 1700000040\n' +
        'link_traffic,exporter=192.0.2.1,in_link=1,out_link=2,in_if=1,out_if=2,class=scitags bytes=1500i,packets=2i,records=1i 1700000040',
    );
    expect(new URL(write.path, 'http://x').searchParams.get('precision')).toBe('s');
    const sent = requests.flatMap(statements);
    expect(sent).toHaveLength(2);
    for (const q of sent) expect(q).toMatch(/^SELECT /);
    expect(sent.some((q) => /CREATE|ALTER|DROP/i.test(q))).toBe(false);
  });

  it('with createDatabase: true (InfluxDB 1.x) provisions, with the token on those requests too', async () => {
    const store = await createInfluxStore(config({ token: TOKEN }), deps);
    await store.close();
    const sent = requests.flatMap(statements);
    expect(sent).toEqual([
      'create database "scitags"',
      'show retention policies on "scitags"',
      'CREATE RETENTION POLICY "raw" ON "scitags" DURATION 30d REPLICATION 1 DEFAULT',
      'CREATE RETENTION POLICY "rollup_1h" ON "scitags" DURATION 400d REPLICATION 1',
      'show continuous queries',
      expect.stringMatching(/^CREATE CONTINUOUS QUERY "cq_scitags_1h" ON "scitags" /),
      expect.stringMatching(/^CREATE CONTINUOUS QUERY "cq_link_1h" ON "scitags" .*max\("out_capacity_bps"\)/),
      expect.stringMatching(/^CREATE CONTINUOUS QUERY "cq_firefly_1h" ON "scitags" .*max\("delivery_rate_max_bps"\)/),
    ]);
    for (const r of requests) expect(r.headers.authorization).toBe(`Token ${TOKEN}`);
  });

  it('without a token: username / password as Basic auth, and no Authorization at all without a user', async () => {
    const withUser = await createInfluxStore(config({ username: 'bob', password: 'pw', createDatabase: false }), deps);
    await withUser.writeRows([ROW]);
    await withUser.close();
    const anonymous = await createInfluxStore(config({ createDatabase: false }), deps);
    await anonymous.writeRows([ROW]);
    await anonymous.close();
    expect(requests.map((r) => r.headers.authorization)).toEqual([`Basic ${Buffer.from('bob:pw').toString('base64')}`, undefined]);
  });
});
