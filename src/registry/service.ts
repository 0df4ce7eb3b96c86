import { loadCache, loadSnapshot, parseRegistryText, saveCache } from './loader.js';
import type { Logger } from '../log.js';
import { Registry } from './registry.js';

/** The largest registry document accepted (the published one is ~7 KB). */
export const DEFAULT_REGISTRY_MAX_BYTES = 4 * 1024 * 1024;

export interface RegistryConfig {
  /** URL of the registry JSON; empty string disables refreshing (offline deployments). */
  url: string;
  /** Refresh period in seconds. */
  refreshSeconds: number;
  /** Last good download is kept here; loaded at start before the shipped snapshot. */
  cacheFile: string;
  /** Give up on one download (connect, headers and the whole body) after this many ms. */
  timeoutMs: number;
  /** Refuse a body larger than this, counted while it streams (default DEFAULT_REGISTRY_MAX_BYTES). */
  maxBytes?: number;
}

/** Limits of one download. */
export interface FetchLimits {
  timeoutMs: number;
  maxBytes: number;
}

export interface RegistryDeps {
  now: () => number;
  fetchText: (url: string, limits: FetchLimits) => Promise<string>;
  log: Logger;
}

/** Why a refresh was refused: the label of scitags_registry_refresh_failures_total. */
export const REGISTRY_FAILURE_REASONS = ['oversize', 'timeout', 'http', 'network', 'invalid'] as const;
export type RegistryFailureReason = (typeof REGISTRY_FAILURE_REASONS)[number];

/** A refused download, with the reason it is counted under. */
export class RegistryFetchError extends Error {
  constructor(
    readonly reason: RegistryFailureReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'RegistryFetchError';
  }
}

export interface RegistryStatus {
  source: Registry['source'];
  modified: string | undefined;
  loadedAtMs: number;
  lastAttemptMs: number | undefined;
  lastError: string | undefined;
  refreshes: number;
  failures: number;
  /** The failures by reason (they add up to `failures`). */
  failuresByReason: Record<RegistryFailureReason, number>;
}

/**
 * GET `url` as text within `limits`: one timer covers connect, headers and the whole body (a
 * server dripping a byte a second is cut at the timeout, not at the first idle gap), and the
 * body is counted as it streams, aborted as soon as it passes `maxBytes` (a Content-Length
 * above it is refused before reading). At most `maxBytes` are ever held.
 */
export async function fetchTextWithTimeout(url: string, limits: FetchLimits): Promise<string> {
  const { timeoutMs, maxBytes } = limits;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const timedOut = (): RegistryFetchError => new RegistryFetchError('timeout', `no complete answer from ${url} within ${timeoutMs} ms`);
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: abort.signal, headers: { accept: 'application/json' } });
    } catch (err) {
      if (abort.signal.aborted) throw timedOut();
      const cause = (err as { cause?: { message?: string } }).cause;
      throw new RegistryFetchError('network', `${(err as Error).message}${cause?.message ? `: ${cause.message}` : ''}`, { cause: err });
    }
    if (!res.ok) {
      abort.abort();
      throw new RegistryFetchError('http', `HTTP ${res.status} from ${url}`);
    }
    const tooBig = (): RegistryFetchError => new RegistryFetchError('oversize', `answer from ${url} is larger than ${maxBytes} bytes`);
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      abort.abort();
      throw tooBig();
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = res.body?.getReader();
    if (reader) {
      for (;;) {
        let step: ReadableStreamReadResult<Uint8Array>;
        try {
          step = await reader.read();
        } catch (err) {
          if (abort.signal.aborted) throw timedOut();
          throw new RegistryFetchError('network', `reading the answer from ${url}: ${(err as Error).message}`, { cause: err });
        }
        if (step.done) break;
        total += step.value.byteLength;
        if (total > maxBytes) {
          abort.abort();
          await reader.cancel().catch(() => undefined);
          throw tooBig();
        }
        chunks.push(step.value);
      }
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    clearTimeout(timer);
  }
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
  private readonly failuresByReason = Object.fromEntries(REGISTRY_FAILURE_REASONS.map((r) => [r, 0])) as Record<
    RegistryFailureReason,
    number
  >;
  /** The refresh in flight: a second caller (the timer, a test, an operator) joins it. */
  private inFlight: Promise<boolean> | undefined;

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
      failuresByReason: { ...this.failuresByReason },
    };
  }

  /**
   * One refresh attempt; resolves true when a new valid registry was installed. Never rejects.
   * Refreshes never overlap: a call while one is running gets that one's result.
   */
  refresh(): Promise<boolean> {
    if (!this.config.url) return Promise.resolve(false);
    this.inFlight ??= this.refreshOnce().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async refreshOnce(): Promise<boolean> {
    this.lastAttemptMs = this.deps.now();
    try {
      const text = await this.deps.fetchText(this.config.url, {
        timeoutMs: this.config.timeoutMs,
        maxBytes: this.config.maxBytes ?? DEFAULT_REGISTRY_MAX_BYTES,
      });
      let doc;
      try {
        doc = parseRegistryText(text);
      } catch (err) {
        throw new RegistryFetchError('invalid', (err as Error).message, { cause: err });
      }
      this.current = new Registry(doc, 'download', this.deps.now());
      if (this.config.cacheFile) saveCache(this.config.cacheFile, text);
      this.lastError = undefined;
      this.refreshes++;
      // Every refreshSeconds (an hour by default): debug, info stays quiet in steady state.
      this.deps.log.debug('registry refreshed', { url: this.config.url, ...this.describe(), bytes: text.length });
      return true;
    } catch (err) {
      const reason: RegistryFailureReason = err instanceof RegistryFetchError ? err.reason : 'network';
      this.failures++;
      this.failuresByReason[reason]++;
      this.lastError = (err as Error).message;
      // Rate-limited: an unreachable registry fails at every refresh, and once said is enough per interval.
      this.deps.log.limited(
        'refresh-failed',
        'warn',
        `registry refresh from ${this.config.url} failed, keeping ${this.current.source} copy: ${this.lastError}`,
        {
          url: this.config.url,
          source: this.current.source,
          reason,
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
