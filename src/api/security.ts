import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_API_MAX_IN_FLIGHT, DEFAULT_API_RATE_LIMIT_PER_MINUTE } from './types.js';

/**
 * Who may talk to the API: bearer tokens, the Host header, CORS, security headers, a rate
 * limit per client and a cap on requests in flight. /health stays open (no token, no rate or
 * concurrency limit) so probes and load balancers keep working; the Host check applies to it.
 */
export interface ApiSecurity {
  /** Bearer tokens accepted; empty: no authentication. */
  tokens: readonly string[];
  /** Host header names accepted (no port; IPv6 in brackets); ['*'] accepts any. */
  allowedHosts: readonly string[];
  /** Origins allowed by CORS; empty: CORS off (no Access-Control-* headers). */
  corsOrigins: readonly string[];
  /** Requests per minute per client address; 0: no rate limit. */
  rateLimitPerMinute: number;
  /** Requests being answered at once (not /health); more are answered 503. 0: no limit. */
  maxInFlight: number;
}

function bracket(a: string): string {
  return a.includes(':') ? `[${a}]` : a;
}

/** Largest request body read (every route is GET; fastify reads no GET body): 1 KiB. */
export const API_BODY_LIMIT_BYTES = 1024;

export const DEFAULT_API_SECURITY: Readonly<ApiSecurity> = {
  tokens: [],
  allowedHosts: defaultAllowedHosts('127.0.0.1'),
  corsOrigins: [],
  rateLimitPerMinute: DEFAULT_API_RATE_LIMIT_PER_MINUTE,
  maxInFlight: DEFAULT_API_MAX_IN_FLIGHT,
};

/**
 * The Host names accepted when none are configured: the bind address, localhost, 127.0.0.1,
 * [::1] and the machine's hostname; on a wildcard bind ('::', '0.0.0.0') also every address
 * of the machine's interfaces (an address literal cannot be rebound by DNS).
 */
export function defaultAllowedHosts(bind: string, host = hostname(), interfaces = networkInterfaces()): string[] {
  const names = new Set<string>(['localhost', '127.0.0.1', '[::1]', bracket(bind).toLowerCase()]);
  if (host) names.add(host.toLowerCase());
  if (bind === '::' || bind === '0.0.0.0') {
    for (const list of Object.values(interfaces))
      for (const i of list ?? []) names.add(bracket(i.address.replace(/%.*$/, '')).toLowerCase());
  }
  return [...names];
}

/** The name part of a Host header ("example.org:8080" -> "example.org", "[::1]:80" -> "[::1]"), lower case. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  return (colon < 0 ? h : h.slice(0, colon)).replace(/\.$/, '');
}

/**
 * Tokens from a file (one per line; blank lines and lines starting with # ignored) and from a
 * comma-separated variable (SCITAGS_API_TOKENS). A file that is named but holds no token is an
 * error: the operator asked for authentication.
 */
export function loadApiTokens(file: string, env: string | undefined): string[] {
  const tokens: string[] = [];
  if (file !== '') {
    const text = readFileSync(file, 'utf8');
    const fromFile = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    if (fromFile.length === 0) throw new Error(`api.tokensFile ${file} holds no token`);
    tokens.push(...fromFile);
  }
  if (env !== undefined)
    tokens.push(
      ...env
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== ''),
    );
  for (const t of tokens) {
    if (/\s/.test(t) || t.length < 16) throw new Error('API tokens must be at least 16 characters with no white space');
  }
  return [...new Set(tokens)];
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Compares against every token, in time independent of where (or whether) it matches. */
export function tokenMatcher(tokens: readonly string[]): (candidate: string) => boolean {
  const digests = tokens.map(digest);
  return (candidate) => {
    const d = digest(candidate);
    let ok = false;
    for (const t of digests) ok = timingSafeEqual(t, d) || ok;
    return ok;
  };
}

const isHealth = (req: FastifyRequest): boolean => (req.url.split('?')[0] ?? '').replace(/\/$/, '') === '/health';

function refuse(reply: FastifyReply, code: number, error: string, message: string): FastifyReply {
  return reply.code(code).send({ error, message });
}

/**
 * Registers the controls on the root instance, before the routes. Order of the checks: security
 * headers (on every answer, refusals included), Host, CORS, rate limit, concurrency, token
 * (not asked on `isPublic` paths: the built-in page's files and /docs, which hold no data).
 */
export function registerSecurity(app: FastifyInstance, s: ApiSecurity, isPublic: (path: string) => boolean = () => false): void {
  // Content-Security-Policy: helmet's default allows 'self' scripts and styles for HTML pages;
  // this API serves only JSON and text, so nothing may load or frame it at all. HSTS is left
  // to the TLS proxy (the API speaks plain HTTP; a pinned HSTS from here would be wrong).
  void app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    strictTransportSecurity: false,
    crossOriginResourcePolicy: { policy: s.corsOrigins.length > 0 ? 'cross-origin' : 'same-origin' },
  });

  const anyHost = s.allowedHosts.includes('*');
  const hosts = new Set(s.allowedHosts.map((h) => h.toLowerCase()));
  // Host before anything else: a rebinding page must learn nothing, not even whether a token is needed.
  void app.after(() => {
    if (anyHost) return;
    app.addHook('onRequest', async (req, reply) => {
      const host = req.headers.host;
      if (host === undefined || host.trim() === '') return refuse(reply, 400, 'bad request', 'a Host header is required');
      const name = hostName(host);
      if (!hosts.has(name)) {
        return refuse(reply, 421, 'misdirected request', `host ${JSON.stringify(name)} is not served here (api.allowedHosts)`);
      }
    });
  });

  if (s.corsOrigins.length > 0) {
    void app.register(cors, {
      origin: s.corsOrigins.includes('*') ? '*' : [...s.corsOrigins],
      methods: ['GET', 'HEAD'],
      allowedHeaders: ['Authorization'],
      maxAge: 600,
    });
  }

  if (s.rateLimitPerMinute > 0) {
    void app.register(rateLimit, {
      max: s.rateLimitPerMinute,
      timeWindow: 60_000,
      allowList: (req) => isHealth(req),
      errorResponseBuilder: (_req, ctx) => ({
        statusCode: 429,
        error: 'too many requests',
        message: `more than ${ctx.max} requests per minute from this client (api.rateLimitPerMinute); retry in ${Math.ceil(ctx.ttl / 1000)} s`,
      }),
    });
  }

  void app.after(() => {
    if (s.maxInFlight > 0) {
      let inFlight = 0;
      app.addHook('onRequest', async (req, reply) => {
        if (isHealth(req)) return;
        if (inFlight >= s.maxInFlight) {
          void reply.header('retry-after', '1');
          return refuse(reply, 503, 'busy', `${s.maxInFlight} requests are being answered (api.maxInFlight); retry later`);
        }
        inFlight++;
        // 'close' follows both a finished answer and a client that went away.
        reply.raw.once('close', () => inFlight--);
      });
    }
    if (s.tokens.length > 0) {
      const matches = tokenMatcher(s.tokens);
      // preValidation: after the rate limit (a route-level onRequest hook), so token guessing is limited.
      app.addHook('preValidation', async (req, reply) => {
        if (isHealth(req) || req.method === 'OPTIONS' || isPublic(req.url.split('?')[0] ?? '')) return;
        const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
        if (m && matches(m[1]!)) return;
        void reply.header('www-authenticate', 'Bearer realm="scitags-collector"');
        return refuse(reply, 401, 'unauthorized', 'a valid bearer token is required (Authorization: Bearer TOKEN)');
      });
    }
  });
}
