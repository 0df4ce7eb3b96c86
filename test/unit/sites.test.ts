/**
 * Site attribution: longest-prefix match (IPv4, IPv6, mapped addresses, edges), the CRIC
 * rcsite document (test/fixtures/cric-rcsite.json, written for these tests, broken entries
 * included), configured prefixes winning over CRIC, the cap on site names, and the CRIC
 * refresh over real HTTP on loopback: oversized, slow, wrong types, errors, cache.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { fetchTextWithTimeout } from '../../src/registry/service.js';
import { parseCricText, readCricDocument } from '../../src/sites/cric.js';
import { addressWords, PrefixTable } from '../../src/sites/prefix-table.js';
import { SiteService, type SitesConfig } from '../../src/sites/service.js';
import { SiteMap } from '../../src/sites/site-map.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'cric-rcsite.json');
const fixtureText = readFileSync(FIXTURE, 'utf8');

describe('address parsing', () => {
  it('gives words for IPv4, IPv6 (compressed, full, dotted tail) and folds IPv4-mapped to IPv4', () => {
    expect(addressWords('192.0.2.1')).toEqual({ family: 4, words: [0xc0000201] });
    expect(addressWords('2001:db8::1')).toEqual({ family: 6, words: [0x20010db8, 0, 0, 1] });
    expect(addressWords('2001:0db8:0000:0000:0000:0000:0000:0001')).toEqual({ family: 6, words: [0x20010db8, 0, 0, 1] });
    expect(addressWords('::')).toEqual({ family: 6, words: [0, 0, 0, 0] });
    expect(addressWords('::1')).toEqual({ family: 6, words: [0, 0, 0, 1] });
    expect(addressWords('ffff::')).toEqual({ family: 6, words: [0xffff0000, 0, 0, 0] });
    expect(addressWords('64:ff9b::192.0.2.33')).toEqual({ family: 6, words: [0x0064ff9b, 0, 0, 0xc0000221] });
    expect(addressWords('::ffff:192.0.2.1')).toEqual({ family: 4, words: [0xc0000201] });
    expect(addressWords('::ffff:c000:201')).toEqual({ family: 4, words: [0xc0000201] });
    expect(addressWords('fe80::1%eth0')).toEqual({ family: 6, words: [0xfe800000, 0, 0, 1] });
    expect(addressWords('not an address')).toBeUndefined();
    expect(addressWords('192.0.2.256')).toBeUndefined();
  });
});

describe('longest-prefix match', () => {
  it('takes the longest prefix in either family, nothing across families', () => {
    const t = new PrefixTable<string>(100);
    expect(t.insert('0.0.0.0/0', 'v4-default')).toBe('added');
    expect(t.insert('10.0.0.0/8', 'ten')).toBe('added');
    expect(t.insert('10.1.0.0/16', 'ten-one')).toBe('added');
    expect(t.insert('10.1.2.3', 'host')).toBe('added');
    expect(t.insert('2001:db8::/32', 'doc')).toBe('added');
    expect(t.insert('2001:db8:ff::/48', 'doc-ff')).toBe('added');
    expect(t.insert('2001:db8:ff::1/128', 'v6-host')).toBe('added');
    expect(t.lookup('10.1.2.3')).toBe('host');
    expect(t.lookup('10.1.2.4')).toBe('ten-one');
    expect(t.lookup('10.200.0.1')).toBe('ten');
    expect(t.lookup('11.0.0.0')).toBe('v4-default');
    expect(t.lookup('255.255.255.255')).toBe('v4-default');
    expect(t.lookup('2001:db8:ff::1')).toBe('v6-host');
    expect(t.lookup('2001:db8:ff::2')).toBe('doc-ff');
    expect(t.lookup('2001:db8:fe::2')).toBe('doc');
    // The IPv4 default route does not hold IPv6 addresses.
    expect(t.lookup('2001:db9::1')).toBeUndefined();
    expect(t.lookup('::ffff:10.1.2.3')).toBe('host');
    expect(t.lookup('garbage')).toBeUndefined();
    expect(t.size).toBe(7);
  });

  it('masks host bits of a prefix, keeps the first value of a duplicate, refuses invalid ones and past the cap', () => {
    const t = new PrefixTable<string>(3);
    expect(t.insert('10.1.2.3/8', 'a')).toBe('added');
    expect(t.insert('10.0.0.0/8', 'b')).toBe('duplicate');
    expect(t.insert('10.0.0.0/33', 'c')).toBe('invalid');
    expect(t.insert('2001:db8::/129', 'c')).toBe('invalid');
    expect(t.insert('300.0.0.0/8', 'c')).toBe('invalid');
    expect(t.insert('', 'c')).toBe('invalid');
    expect(t.insert(' 192.0.2.0/24 ', 'd')).toBe('added');
    // An IPv4-mapped prefix of 96 bits or more is the IPv4 prefix.
    expect(t.insert('::ffff:198.51.100.0/120', 'e')).toBe('added');
    expect(t.insert('2001:db8::/32', 'f')).toBe('full');
    expect(t.lookup('10.255.255.255')).toBe('a');
    expect(t.lookup('192.0.2.77')).toBe('d');
    expect(t.lookup('198.51.100.9')).toBe('e');
    expect(t.lookup('198.51.101.9')).toBeUndefined();
    expect(t.size).toBe(3);
  });

  it('handles /0, /1, /31, /32 in IPv4 and /0, /64, /127 in IPv6', () => {
    const t = new PrefixTable<number>(100);
    t.insert('128.0.0.0/1', 1);
    t.insert('192.0.2.0/31', 31);
    t.insert('::/0', 0);
    t.insert('2001:db8:0:1::/64', 64);
    t.insert('2001:db8:0:1::/127', 127);
    expect(t.lookup('127.255.255.255')).toBeUndefined();
    expect(t.lookup('128.0.0.0')).toBe(1);
    expect(t.lookup('192.0.2.1')).toBe(31);
    expect(t.lookup('192.0.2.2')).toBe(1);
    expect(t.lookup('2001:db8:0:1::1')).toBe(127);
    expect(t.lookup('2001:db8:0:1::2')).toBe(64);
    expect(t.lookup('2001:db8:0:1:8000::')).toBe(64);
    expect(t.lookup('2001:db8:0:2::')).toBe(0);
    // ::/0 is IPv6 only: a mapped IPv4 address is looked up as IPv4.
    expect(t.lookup('::ffff:1.2.3.4')).toBeUndefined();
  });
});

describe('the CRIC rcsite document', () => {
  it('reads names and networks of every route, skipping and counting entries of the wrong type', () => {
    const doc = parseCricText(fixtureText, 1000);
    expect(doc).toEqual({
      sites: [
        { name: 'SITE-BROAD', prefixes: ['203.0.113.0/24', '198.51.0.0/16', '2001:db8::/32'] },
        { name: 'SITE-NARROW', prefixes: ['198.51.100.0/24', 'not-a-prefix', '2001:db8:abcd::/48'] },
        { name: 'SITE-NETWORKS-STRING', prefixes: [] },
        { name: 'SITE-ROUTE-NO-NETWORKS', prefixes: [] },
        { name: 'SITE-SAME-PREFIX', prefixes: ['203.0.113.0/24'] },
      ],
      // NOT-AN-OBJECT, the number 42, networks.ipv4 a string, a route without networks,
      // netroutes a list, a name with a comma
      skipped: 6,
      overCap: 0,
    });
  });

  it('caps the prefixes read and refuses documents that are not an object of sites', () => {
    expect(parseCricText(fixtureText, 4)).toMatchObject({ overCap: 3 });
    expect(parseCricText(fixtureText, 4).sites.flatMap((s) => s.prefixes)).toEqual([
      '203.0.113.0/24',
      '198.51.0.0/16',
      '2001:db8::/32',
      '198.51.100.0/24',
    ]);
    expect(() => parseCricText('[1, 2]', 10)).toThrow('must be a JSON object keyed by site name');
    expect(() => parseCricText('null', 10)).toThrow('must be a JSON object');
    expect(() => parseCricText('{"A": ', 10)).toThrow('not JSON');
    // Site names that would clash with the lookup's own answers are refused.
    expect(readCricDocument({ unknown: { netroutes: {} }, other: { netroutes: {} } }, 10)).toEqual({ sites: [], skipped: 2, overCap: 0 });
    // A name longer than 100 characters, and an overlong prefix string.
    expect(
      readCricDocument({ ['X'.repeat(101)]: { netroutes: {} }, Y: { netroutes: { r: { networks: { v: ['1'.repeat(65)] } } } } }, 10),
    ).toEqual({
      sites: [{ name: 'Y', prefixes: [] }],
      skipped: 2,
      overCap: 0,
    });
  });

  it('attributes addresses: longest CRIC prefix, first site in name order on a shared prefix, unknown elsewhere', () => {
    const map = new SiteMap({}, { maxPrefixes: 1000, maxSites: 100 });
    map.setCric(parseCricText(fixtureText, 1000));
    expect(map.siteOf('198.51.100.7')).toBe('SITE-NARROW');
    expect(map.siteOf('::ffff:198.51.100.7')).toBe('SITE-NARROW');
    expect(map.siteOf('198.51.7.1')).toBe('SITE-BROAD');
    expect(map.siteOf('203.0.113.9')).toBe('SITE-BROAD');
    expect(map.siteOf('2001:db8:abcd:1::5')).toBe('SITE-NARROW');
    expect(map.siteOf('2001:db8:1::1')).toBe('SITE-BROAD');
    expect(map.siteOf('192.0.2.1')).toBe('unknown');
    expect(map.siteOf('2001:db9::1')).toBe('unknown');
    expect(map.stats()).toEqual({
      configuredPrefixes: 0,
      cricPrefixes: 5,
      cricSites: 5,
      invalidPrefixes: 1,
      duplicatePrefixes: 1,
      prefixesOverCap: 0,
      names: 2,
      folded: 0,
    });
  });

  it('configured prefixes win over CRIC, even shorter ones', () => {
    const map = new SiteMap({ 'MY-SITE': ['198.51.100.128/25'], 'LOCAL-16': ['203.0.0.0/16'] }, { maxPrefixes: 1000, maxSites: 100 });
    map.setCric(parseCricText(fixtureText, 1000));
    expect(map.siteOf('198.51.100.200')).toBe('MY-SITE');
    expect(map.siteOf('198.51.100.100')).toBe('SITE-NARROW');
    expect(map.siteOf('203.0.113.1')).toBe('LOCAL-16');
    expect(map.stats()).toMatchObject({ configuredPrefixes: 2, cricPrefixes: 5 });
  });

  it("folds site names past maxSites into 'other', counted; names given out stay across a refresh", () => {
    const map = new SiteMap({ A: ['192.0.2.0/26'], B: ['192.0.2.64/26'], C: ['192.0.2.128/26'] }, { maxPrefixes: 100, maxSites: 2 });
    expect(map.siteOf('192.0.2.130')).toBe('C');
    expect(map.siteOf('192.0.2.1')).toBe('A');
    expect(map.siteOf('192.0.2.65')).toBe('other');
    expect(map.siteOf('192.0.2.66')).toBe('other');
    expect(map.siteOf('192.0.2.131')).toBe('C');
    expect(map.siteOf('192.0.2.200')).toBe('unknown');
    map.setCric({ sites: [], skipped: 0, overCap: 0 });
    expect(map.siteOf('192.0.2.2')).toBe('A');
    expect(map.stats()).toMatchObject({ names: 2, folded: 2 });
  });

  it('the prefix cap covers configured and CRIC prefixes together', () => {
    const map = new SiteMap({ A: ['192.0.2.0/24', '2001:db8:ffff::/48'] }, { maxPrefixes: 4, maxSites: 100 });
    map.setCric(parseCricText(fixtureText, 1000));
    expect(map.stats()).toMatchObject({ configuredPrefixes: 2, cricPrefixes: 2, prefixesOverCap: 3 });
  });
});

describe('CRIC refresh over HTTP (loopback)', () => {
  let server: Server;
  let base = '';
  let requests = 0;
  let dir = '';
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    '/cric.json': (_q, res) => setTimeout(() => res.end(fixtureText), 100),
    '/huge-declared.json': (_q, res) => {
      res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
      res.end();
    },
    '/huge-chunked.json': (_q, res) => {
      res.write(`{"A": {"netroutes": {}}, "pad": "${'x'.repeat(64 * 1024)}`);
      res.end(`${'y'.repeat(64 * 1024)}"}`);
    },
    '/drip.json': (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{');
      const t = setInterval(() => res.write(' '), 20);
      res.once('close', () => clearInterval(t));
    },
    '/array.json': (_q, res) => res.end('[{"name": "SITE-X", "netroutes": {}}]'),
    '/not-json.html': (_q, res) => res.end('<html>maintenance</html>'),
    '/error.json': (_q, res) => {
      res.writeHead(503);
      res.end('down');
    },
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sites-test-'));
    server = createServer((req, res) => {
      requests++;
      const route = routes[req.url ?? ''];
      if (route) route(req, res);
      else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (over: Partial<SitesConfig>): SitesConfig => ({
    prefixes: {},
    cricSource: '',
    refreshSeconds: 3600,
    cacheFile: '',
    timeoutMs: 2000,
    maxBytes: 64 * 1024,
    maxPrefixes: 1000,
    maxSites: 100,
    ...over,
  });
  const service = (over: Partial<SitesConfig>): SiteService =>
    new SiteService(config(over), { now: () => 1_000_000, fetchText: fetchTextWithTimeout, log: silentLogger() });

  it('downloads, installs and caches the document; a new service starts from the cache without the network', async () => {
    const cacheFile = join(dir, 'cric-cache.json');
    const s = service({ cricSource: `${base}/cric.json`, cacheFile });
    expect(s.siteOf('198.51.100.7')).toBe('unknown');
    const before = requests;
    // Two callers at once share one download.
    const [a, b] = await Promise.all([s.refresh(), s.refresh()]);
    expect([a, b]).toEqual([true, true]);
    expect(requests - before).toBe(1);
    expect(s.siteOf('198.51.100.7')).toBe('SITE-NARROW');
    expect(s.status()).toMatchObject({
      cricFrom: 'download',
      cricLoadedAtMs: 1_000_000,
      refreshes: 1,
      failures: 0,
      cricSkipped: 6,
      cricSites: 5,
    });
    expect(readFileSync(cacheFile, 'utf8')).toBe(fixtureText);

    const next = service({ cricSource: `${base}/never-asked.json`, cacheFile });
    expect(next.siteOf('198.51.100.7')).toBe('SITE-NARROW');
    expect(next.status()).toMatchObject({ cricFrom: 'cache', refreshes: 0 });
  });

  it('refuses oversized, slow, non-object, non-JSON and failed answers by reason, keeping the prefixes in use', async () => {
    const s = service({ cricSource: `${base}/cric.json`, timeoutMs: 300 });
    expect(await s.refresh()).toBe(true);
    const failing = [
      ['/huge-declared.json', 'oversize'],
      ['/huge-chunked.json', 'oversize'],
      ['/drip.json', 'timeout'],
      ['/array.json', 'invalid'],
      ['/not-json.html', 'invalid'],
      ['/error.json', 'http'],
    ] as const;
    for (const [path, reason] of failing) {
      const t = service({ cricSource: `${base}${path}`, timeoutMs: 300 });
      expect(await t.refresh()).toBe(false);
      expect(t.status().failuresByReason[reason]).toBe(1);
      expect(t.status().failures).toBe(1);
      expect(t.status().cricFrom).toBe('none');
    }
    // A failure after a success keeps the prefixes of the success.
    const keep = service({ cricSource: `${base}/cric.json`, timeoutMs: 300 });
    await keep.refresh();
    (keep as unknown as { config: SitesConfig }).config.cricSource = `${base}/error.json`;
    expect(await keep.refresh()).toBe(false);
    expect(keep.siteOf('198.51.100.7')).toBe('SITE-NARROW');
    expect(keep.status()).toMatchObject({ refreshes: 1, failures: 1, lastError: `HTTP 503 from ${base}/error.json` });
  });

  it('reads a file source, refusing a missing or oversized file', async () => {
    const s = service({ cricSource: FIXTURE });
    expect(await s.refresh()).toBe(true);
    expect(s.siteOf('2001:db8:abcd::1')).toBe('SITE-NARROW');
    expect(s.status().cricFrom).toBe('file');
    const missing = service({ cricSource: join(dir, 'absent.json') });
    expect(await missing.refresh()).toBe(false);
    expect(missing.status().failuresByReason.file).toBe(1);
    const big = join(dir, 'big.json');
    writeFileSync(big, `{"A": {"pad": "${'z'.repeat(1000)}"}}`);
    const tooBig = service({ cricSource: big, maxBytes: 500 });
    expect(await tooBig.refresh()).toBe(false);
    expect(tooBig.status().failuresByReason.oversize).toBe(1);
  });

  it('does nothing without a source (refresh answers false, no timer)', async () => {
    const s = service({ prefixes: { A: ['192.0.2.0/24'] } });
    expect(await s.refresh()).toBe(false);
    s.start();
    s.stop();
    expect(s.siteOf('192.0.2.9')).toBe('A');
    expect(s.status()).toMatchObject({ cricFrom: 'none', refreshes: 0, failures: 0, configuredPrefixes: 1 });
  });
});
