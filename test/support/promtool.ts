import { spawnSync } from 'node:child_process';

/**
 * Debian's `promtool` (package `prometheus`) checks what the collector exposes and parses the
 * Prometheus dashboard's queries. Like influxd: tests skip, with a notice, when it is absent
 * locally; with CI set they fail instead, because `.ci/run` installs the package.
 */
export function promtoolAvailable(what: string): boolean {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).status === 0;
  if (found) return true;
  if (process.env.CI) throw new Error('promtool is not installed but CI is set: .ci/run must install the prometheus package');
  console.warn(`promtool not found (apt-get install prometheus): skipping ${what}`);
  return false;
}

export interface PromtoolResult {
  status: number | null;
  /** stdout and stderr together (promtool writes its findings to either, by version). */
  output: string;
}

export function promtool(args: readonly string[], input?: string): PromtoolResult {
  const r = spawnSync('promtool', args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}), timeout: 30_000 });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/**
 * promtool's lint findings on prom-client's own default metrics: these three Node.js gauges
 * carry a `_total` suffix (prom-client's names, used by the common Node.js dashboards, so
 * they are kept). Anything else promtool reports is ours to fix.
 */
export const PROM_CLIENT_LINT = [
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
] as const;
