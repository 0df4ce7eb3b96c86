import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildApi, defaultAllowedHosts, hostName, loadApiTokens, tokenMatcher } from '../../src/api/index.js';
import type { ApiDeps } from '../../src/api/index.js';
import type { TrafficQueryResult, TrafficStore } from '../../src/store/types.js';
import { bareApiDeps } from '../support/api-deps.js';

const NOW = Date.UTC(2025, 0, 1, 12);
const TOKEN = 'a-token-of-sixteen+chars';
const OTHER = 'another-token-0123456789';

const EMPTY: TrafficQueryResult = { series: [], totals: { bytes: 0, packets: 0, records: 0 } };

function store(query: () => Promise<TrafficQueryResult> = () => Promise.resolve(EMPTY)): TrafficStore {
  return {
    kind: 'memory',
    readRows: () => Promise.resolve([]),
    writeRows: () => Promise.resolve(),
    queryTraffic: query,
    close: () => Promise.resolve(),
  } as TrafficStore;
}

function deps(extra: Partial<ApiDeps> = {}): ApiDeps {
  return bareApiDeps(store(), NOW, extra);
}

describe('API tokens', () => {
  const app = buildApi(deps({ security: { tokens: [TOKEN, OTHER] } }));

  it('every route but /health wants a bearer token: 401 with WWW-Authenticate', async () => {
    for (const url of [
      '/api/v1/traffic',
      '/api/v1/experiments',
      '/api/v1/links',
      '/api/v1/exporters',
      '/api/v1/openapi.json',
      '/metrics',
    ]) {
      const r = await app.inject({ url });
      expect([url, r.statusCode]).toEqual([url, 401]);
      expect(r.headers['www-authenticate']).toBe('Bearer realm="scitags-collector"');
      expect(r.json()).toEqual({ error: 'unauthorized', message: 'a valid bearer token is required (Authorization: Bearer TOKEN)' });
    }
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
  });

  it('accepts each configured token and refuses others', async () => {
    const get = (authorization: string) => app.inject({ url: '/api/v1/exporters', headers: { authorization } });
    expect((await get(`Bearer ${TOKEN}`)).statusCode).toBe(200);
    expect((await get(`bearer ${OTHER}`)).statusCode).toBe(200);
    expect((await get(`Bearer ${TOKEN}x`)).statusCode).toBe(401);
    expect((await get(`Basic ${TOKEN}`)).statusCode).toBe(401);
    expect((await get('Bearer ')).statusCode).toBe(401);
  });

  it('a bad token is refused before the parameters are looked at', async () => {
    const r = await app.inject({ url: '/api/v1/traffic?nope=1' });
    expect(r.statusCode).toBe(401);
  });

  it('the matcher compares every token (digests, timingSafeEqual)', () => {
    const m = tokenMatcher([TOKEN, OTHER]);
    expect([m(TOKEN), m(OTHER), m(''), m(TOKEN.slice(0, -1))]).toEqual([true, true, false, false]);
  });

  it('tokens come from a file (one per line, # comments) and SCITAGS_API_TOKENS (comma-separated)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokens-'));
    const file = join(dir, 'tokens');
    writeFileSync(file, `# operators\n${TOKEN}\n\n  ${OTHER}  \r\n`);
    expect(loadApiTokens(file, undefined)).toEqual([TOKEN, OTHER]);
    expect(loadApiTokens(file, ` ${OTHER}, third-token-0123456789 ,`)).toEqual([TOKEN, OTHER, 'third-token-0123456789']);
    expect(loadApiTokens('', undefined)).toEqual([]);
    writeFileSync(file, '# nothing\n\n');
    expect(() => loadApiTokens(file, undefined)).toThrow(`api.tokensFile ${file} holds no token`);
    expect(() => loadApiTokens('', 'short')).toThrow('API tokens must be at least 16 characters with no white space');
  });
});

describe('API Host header (DNS rebinding)', () => {
  const app = buildApi(deps({ security: { allowedHosts: ['collector.example.org', '[::1]', 'localhost'] } }));

  it('answers the configured names, with or without a port, in any case', async () => {
    for (const host of ['collector.example.org', 'Collector.Example.ORG:8080', '[::1]:8080', 'localhost']) {
      expect([host, (await app.inject({ url: '/health', headers: { host } })).statusCode]).toEqual([host, 200]);
    }
  });

  it('any other name is 421 naming it, on every route', async () => {
    for (const url of ['/health', '/api/v1/exporters', '/metrics']) {
      const r = await app.inject({ url, headers: { host: 'attacker.example:8080' } });
      expect(r.statusCode).toBe(421);
      expect(r.json()).toEqual({ error: 'misdirected request', message: 'host "attacker.example" is not served here (api.allowedHosts)' });
    }
  });

  it('the defaults: bind address, localhost, 127.0.0.1, [::1], hostname; interface addresses on a wildcard bind', () => {
    expect(defaultAllowedHosts('192.0.2.10', 'Box', {})).toEqual(['localhost', '127.0.0.1', '[::1]', '192.0.2.10', 'box']);
    const ifs = {
      eth0: [
        { address: '198.51.100.7', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: null },
        { address: 'fe80::1%eth0', netmask: 'ffff::', family: 'IPv6', mac: '', internal: false, cidr: null, scopeid: 2 },
      ],
    } as unknown as ReturnType<typeof import('node:os').networkInterfaces>;
    expect(defaultAllowedHosts('::', 'box', ifs)).toEqual(['localhost', '127.0.0.1', '[::1]', '[::]', 'box', '198.51.100.7', '[fe80::1]']);
    expect([hostName('[2001:DB8::1]:80'), hostName('example.org.'), hostName('a:1')]).toEqual(['[2001:db8::1]', 'example.org', 'a']);
  });

  it('"*" accepts any name', async () => {
    const open = buildApi(deps({ security: { allowedHosts: ['*'] } }));
    expect((await open.inject({ url: '/health', headers: { host: 'whatever.example' } })).statusCode).toBe(200);
  });
});

describe('API headers, CORS, methods', () => {
  it('security headers on every answer, refusals included; no CORS by default', async () => {
    const app = buildApi(deps());
    for (const url of ['/health', '/nope']) {
      const r = await app.inject({ url, headers: { origin: 'https://grafana.example' } });
      expect(r.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(r.headers['cross-origin-resource-policy']).toBe('same-origin');
      expect(r.headers['strict-transport-security']).toBeUndefined();
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
    }
  });

  it('configured origins get CORS headers and preflight answers; others none', async () => {
    const app = buildApi(deps({ security: { corsOrigins: ['https://grafana.example'], tokens: [TOKEN] } }));
    const ok = await app.inject({ url: '/health', headers: { origin: 'https://grafana.example' } });
    expect(ok.headers['access-control-allow-origin']).toBe('https://grafana.example');
    expect(ok.headers['cross-origin-resource-policy']).toBe('cross-origin');
    const other = await app.inject({ url: '/health', headers: { origin: 'https://evil.example' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const pre = await app.inject({
      method: 'OPTIONS',
      url: '/api/v1/traffic',
      headers: { origin: 'https://grafana.example', 'access-control-request-method': 'GET' },
    });
    expect(pre.statusCode).toBe(204);
    expect(pre.headers['access-control-allow-methods']).toBe('GET, HEAD');
    expect(pre.headers['access-control-allow-headers']).toBe('Authorization');
  });

  it('other methods on a known route are 405 with Allow; unknown routes 404', async () => {
    const app = buildApi(deps());
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
      const r = await app.inject({ method, url: '/api/v1/traffic?from=now-1h', payload: { a: 1 } });
      expect(r.statusCode).toBe(405);
      expect(r.headers['allow']).toBe('GET, HEAD');
      expect(r.json()).toEqual({
        error: 'method not allowed',
        message: `${method} is not allowed on /api/v1/traffic (allowed: GET, HEAD)`,
      });
    }
    expect((await app.inject({ method: 'POST', url: '/health/' })).statusCode).toBe(405);
    expect((await app.inject({ method: 'HEAD', url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/api/v1/nope' })).statusCode).toBe(404);
  });
});

describe('API rate and concurrency limits', () => {
  it('more than rateLimitPerMinute requests from one client are 429 (not /health)', async () => {
    const app = buildApi(deps({ security: { rateLimitPerMinute: 3 } }));
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await app.inject({ url: '/api/v1/links' })).statusCode);
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    const r = await app.inject({ url: '/api/v1/links' });
    expect(r.json()).toMatchObject({ error: 'too many requests' });
    expect(r.json<{ message: string }>().message).toMatch(
      /^more than 3 requests per minute from this client \(api.rateLimitPerMinute\); retry in \d+ s$/,
    );
    expect(r.headers['retry-after']).toBeDefined();
    const other = await app.inject({ url: '/api/v1/links', remoteAddress: '192.0.2.99' });
    expect(other.statusCode).toBe(200);
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
  });

  it('requests past maxInFlight are 503 busy; /health still answers; slots come back', async () => {
    const waiting: (() => void)[] = [];
    const slow = store(() => new Promise((resolve) => waiting.push(() => resolve(EMPTY))));
    const app = buildApi(deps({ store: slow, security: { maxInFlight: 2 } }));
    const a = app.inject({ url: '/api/v1/traffic' });
    const b = app.inject({ url: '/api/v1/traffic' });
    while (waiting.length < 2) await new Promise((r) => setTimeout(r, 5));
    const c = await app.inject({ url: '/api/v1/traffic' });
    expect(c.statusCode).toBe(503);
    expect(c.headers['retry-after']).toBe('1');
    expect(c.json()).toEqual({ error: 'busy', message: '2 requests are being answered (api.maxInFlight); retry later' });
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    for (const w of waiting.splice(0)) w();
    expect([(await a).statusCode, (await b).statusCode]).toEqual([200, 200]);
    const d = app.inject({ url: '/api/v1/traffic' });
    while (waiting.length < 1) await new Promise((r) => setTimeout(r, 5));
    waiting[0]!();
    expect((await d).statusCode).toBe(200);
  });
});
