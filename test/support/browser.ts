import { existsSync, mkdirSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { delimiter, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { repoRoot } from './root.js';

/**
 * Headless Chromium for the page tests: Debian's chromium (.ci/run installs it), driven by
 * playwright-core. Absent locally the tests skip with a notice; under CI it must be there.
 */
export function findChromium(): string | undefined {
  const named = process.env['CHROMIUM_PATH'];
  if (named) return named;
  const candidates = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) candidates.push(join(dir, 'chromium'), join(dir, 'chromium-browser'));
  const found = candidates.find((c) => existsSync(c));
  if (!found && process.env['CI']) throw new Error('chromium is not installed but CI is set: .ci/run must install the chromium package');
  return found;
}

export async function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** Where screenshots go (test-artifacts/, gitignored; CI keeps the directory). */
export function artifactsDir(): string {
  const dir = join(repoRoot(), 'test-artifacts', 'browser');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The page needs its build (npm run build:web; `npm install` runs it). */
export function pageBuilt(): boolean {
  return existsSync(join(repoRoot(), 'dist', 'web', 'index.html'));
}

export interface PrefixProxy {
  url: string;
  /** Answers for API paths (after the prefix) that should fail instead of being forwarded. */
  failures: Map<string, { status: number; body: string; type: string }>;
  close(): Promise<void>;
}

/**
 * A reverse proxy in the manner of nginx `location /scitags/ { proxy_pass http://upstream/; }`:
 * strips the prefix, sets Host to the upstream, forwards everything else as is.
 */
export async function prefixProxy(upstream: string, prefix: string): Promise<PrefixProxy> {
  const target = new URL(upstream);
  const failures = new Map<string, { status: number; body: string; type: string }>();
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (!url.startsWith(prefix)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not under the prefix');
      return;
    }
    const path = `/${url.slice(prefix.length)}`;
    const fail = failures.get(path.split('?')[0]!);
    if (fail) {
      res.writeHead(fail.status, { 'content-type': fail.type }).end(fail.body);
      return;
    }
    const up = request(
      { host: target.hostname, port: target.port, path, method: req.method, headers: { ...req.headers, host: target.host } },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    failures,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
