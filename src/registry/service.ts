import { loadCache, loadSnapshot, parseRegistryText, saveCache } from './loader.js';
import type { Logger } from '../log.js';
import { Registry } from './registry.js';

export interface RegistryConfig {
  /** URL of the registry JSON; empty string disables refreshing (offline deployments). */
  url: string;
  /** Refresh period in seconds. */
  refreshSeconds: number;
  /** Last good download is kept here; loaded at start before the shipped snapshot. */
  cacheFile: string;
  /** Give up on one download after this many ms. */
  timeoutMs: number;
}

export interface RegistryDeps {
  now: () => number;
  fetchText: (url: string, timeoutMs: number) => Promise<string>;
  log: Logger;
}

export interface RegistryStatus {
  source: Registry['source'];
  modified: string | undefined;
  loadedAtMs: number;
  lastAttemptMs: number | undefined;
  lastError: string | undefined;
  refreshes: number;
  failures: number;
}

export async function fetchTextWithTimeout(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`HTTP ${res.status} from ${url}`);
  return await res.text();
}

/**
 * Keeps the registry in use current: starts from the cache file (last good download) or the
 * shipped snapshot without touching the network, then refreshes on a timer. A download is
 * used only after it validates; a failed or invalid one keeps the registry in use, so the
 * collector never stops naming traffic because the registry is unreachable.
 */
export class RegistryService {
  private current: Registry;
  private timer: NodeJS.Timeout | undefined;
  private lastAttemptMs: number | undefined;
  private lastError: string | undefined;
  private refreshes = 0;
  private failures = 0;

  constructor(
    private readonly config: RegistryConfig,
    private readonly deps: RegistryDeps,
  ) {
    const cached = config.cacheFile ? loadCache(config.cacheFile, deps.now()) : { registry: undefined, error: undefined };
    if (cached.error) deps.log.warn(`ignoring registry cache: ${cached.error}`, { cacheFile: config.cacheFile });
    this.current = cached.registry ?? loadSnapshot(deps.now());
    deps.log.info(`using the ${this.current.source} copy, ${this.current.experimentCount} experiments`, this.describe());
  }

  /** What a log line says about the registry in use: where it came from, its size and age. */
  private describe(): Record<string, unknown> {
    const r = this.current;
    const modifiedMs = r.modified === undefined ? NaN : Date.parse(r.modified);
    return {
      source: r.source,
      experiments: r.experimentCount,
      modified: r.modified ?? null,
      // Age of the registry's own content (its `modified` stamp), not of our copy.
      ageSeconds: Number.isFinite(modifiedMs) ? Math.max(0, Math.round((this.deps.now() - modifiedMs) / 1000)) : null,
    };
  }

  get registry(): Registry {
    return this.current;
  }

  status(): RegistryStatus {
    return {
      source: this.current.source,
      modified: this.current.modified,
      loadedAtMs: this.current.loadedAtMs,
      lastAttemptMs: this.lastAttemptMs,
      lastError: this.lastError,
      refreshes: this.refreshes,
      failures: this.failures,
    };
  }

  /** One refresh attempt; resolves true when a new valid registry was installed. Never rejects. */
  async refresh(): Promise<boolean> {
    if (!this.config.url) return false;
    this.lastAttemptMs = this.deps.now();
    try {
      const text = await this.deps.fetchText(this.config.url, this.config.timeoutMs);
      const doc = parseRegistryText(text);
      this.current = new Registry(doc, 'download', this.deps.now());
      if (this.config.cacheFile) saveCache(this.config.cacheFile, text);
      this.lastError = undefined;
      this.refreshes++;
      // Every refreshSeconds (an hour by default): debug, info stays quiet in steady state.
      this.deps.log.debug('registry refreshed', { url: this.config.url, ...this.describe(), bytes: text.length });
      return true;
    } catch (err) {
      this.failures++;
      this.lastError = (err as Error).message;
      // Rate-limited: an unreachable registry fails at every refresh, and once said is enough per interval.
      this.deps.log.limited(
        'refresh-failed',
        'warn',
        `registry refresh from ${this.config.url} failed, keeping ${this.current.source} copy: ${this.lastError}`,
        {
          url: this.config.url,
          source: this.current.source,
          failures: this.failures,
        },
      );
      return false;
    }
  }

  start(): void {
    if (!this.config.url || this.timer) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.config.refreshSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
