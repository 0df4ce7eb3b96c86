import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Starts Debian's `influxd` (1.x) for a test: its own temporary data directory, HTTP on a
 * free loopback port, no reporting, and stops it afterwards. Integration tests call
 * `influxdAvailable()` and skip when the binary is absent locally; with CI set they fail
 * instead, because `.ci/run` installs the package.
 */
export interface InfluxdHandle {
  url: string;
  port: number;
  dataDir: string;
  /** Stops the server (SIGTERM, then SIGKILL); the data dir is kept for restart(). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data dir (outage tests). */
  restart(): Promise<void>;
  /** Stops and removes the data dir. */
  destroy(): Promise<void>;
  /** Sends a signal to the running server: SIGSTOP freezes it (connections hang), SIGCONT thaws it. */
  signal(sig: NodeJS.Signals): void;
}

export function influxdAvailable(): boolean {
  const found = spawnSync('sh', ['-c', 'command -v influxd'], { encoding: 'utf8' }).status === 0;
  if (!found && process.env.CI) throw new Error('influxd is not installed but CI is set: .ci/run must install the influxdb package');
  return found;
}

export async function freeTcpPort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPing(url: string, timeoutMs: number, child: ChildProcess): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`influxd exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/ping`);
      if (res.status === 204) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`influxd did not answer ${url}/ping within ${timeoutMs} ms`);
}

export async function startInfluxd(): Promise<InfluxdHandle> {
  const dataDir = mkdtempSync(join(tmpdir(), 'influxd-'));
  const port = await freeTcpPort();
  const rpcPort = await freeTcpPort();
  const configPath = join(dataDir, 'influxdb.conf');
  writeFileSync(
    configPath,
    [
      'reporting-enabled = false',
      `bind-address = "127.0.0.1:${rpcPort}"`,
      '[meta]',
      `  dir = "${join(dataDir, 'meta')}"`,
      '[data]',
      `  dir = "${join(dataDir, 'data')}"`,
      `  wal-dir = "${join(dataDir, 'wal')}"`,
      '  query-log-enabled = false',
      '[monitor]',
      '  store-enabled = false',
      '[http]',
      `  bind-address = "127.0.0.1:${port}"`,
      '  auth-enabled = false',
      '  log-enabled = false',
      '[continuous_queries]',
      '  log-enabled = false',
      '  run-interval = "1s"',
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess;
  const launch = async (): Promise<void> => {
    child = spawn('influxd', ['run', '-config', configPath, '-pidfile', join(dataDir, 'influxd.pid')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.resume();
    await waitForPing(url, 15_000, child);
  };
  const stop = async (): Promise<void> => {
    const c = child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGCONT'); // a frozen server would not act on SIGTERM
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  await launch();
  return {
    url,
    port,
    dataDir,
    stop,
    restart: launch,
    signal: (sig) => {
      child.kill(sig);
    },
    destroy: async () => {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
