import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/**
 * The built-in page at / (web/, built by vite into dist/web) and the OpenAPI document browsable
 * at /docs/ (@fastify/swagger-ui). Both use relative URLs only, so they work unchanged behind a
 * reverse proxy that maps a prefix onto the collector (nginx `location /scitags/ { proxy_pass
 * http://127.0.0.1:8080/; }`). Their files are public (no token: they hold no data); the page
 * asks for a token when the API answers 401 and sends it with every API request.
 */

/** What the page may load: its own scripts, styles and API, nothing else, and never be framed. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** swagger-ui sets style attributes and loads its own files. */
const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'self'; form-action 'none'; frame-ancestors 'none'";

export const DOCS_PREFIX = '/docs';

/** The package's dist/web (the first ancestor of this file holding package.json, then dist/web). */
export function defaultPageDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return join(from, 'web');
    dir = up;
  }
  return join(dir, 'dist', 'web');
}

/** Paths served without a token: the page's files and the API documentation. */
export function isPublicPath(path: string, pageFiles: ReadonlySet<string>): boolean {
  return pageFiles.has(path) || path === DOCS_PREFIX || path.startsWith(`${DOCS_PREFIX}/`);
}

/** The URL paths of the page's files ("/", "/index.html", "/assets/..."). */
export function pageFilePaths(dir: string): Set<string> {
  const out = new Set<string>();
  if (!existsSync(join(dir, 'index.html'))) return out;
  const walk = (d: string, prefix: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${prefix}${e.name}/`);
      else out.add(`${prefix}${e.name}`);
    }
  };
  walk(dir, '/');
  out.add('/');
  return out;
}

export function registerPage(app: FastifyInstance, dir: string, files: ReadonlySet<string>): void {
  if (files.size > 0) {
    void app.register(fastifyStatic, {
      root: dir,
      prefix: '/',
      // One route per file found at start (no catch-all: unknown paths keep the API's 404 / 405).
      wildcard: false,
      index: 'index.html',
      setHeaders: (res) => {
        res.setHeader('content-security-policy', PAGE_CSP);
      },
    });
  } else {
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`The page is not built (no ${join(dir, 'index.html')}): run npm run build. The API is at api/v1/ and documented at docs/.\n`),
    );
  }
  void app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    staticCSP: DOCS_CSP,
    uiConfig: { deepLinking: false },
  });
}
