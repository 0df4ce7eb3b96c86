import { readFileSync, statSync } from 'node:fs';
import type { Logger } from '../log.js';
import { saveCache } from '../registry/loader.js';
import { REGISTRY_FAILURE_REASONS, RegistryFetchError, type FetchLimits } from '../registry/service.js';
import { parseCricText, type CricDocument } from './cric.js';
import { SiteMap, type SiteMapStats } from './site-map.js';
import { compileSiteTable, SiteDirectory, type SiteTableSpec } from '../enrich/site-lookup.js';

/** The largest CRIC document accepted: the full rcsite answer is a few MB. */
export const DEFAULT_CRIC_MAX_BYTES = 32 * 1024 * 1024;
/** Prefixes held (configured and CRIC together): CRIC lists a few thousand. */
export const DEFAULT_MAX_SITE_PREFIXES = 100_000;
/** Distinct site names used as tags; CRIC has about 600 rcsites with network routes. */
export const DEFAULT_MAX_SITES = 1000;

export interface SitesConfig {
  /** Site name -> CIDR list (sites.prefixes); wins over CRIC. */
  prefixes: Readonly<Record<string, readonly string[]>>;
  /** CRIC rcsite document: an http(s) URL, a file path, or '' for none. */
  cricSource: string;
  refreshSeconds: number;
  /** Last good CRIC document (from a URL) is kept here and used at start; '' keeps none. */
  cacheFile: string;
  timeoutMs: number;
  maxBytes: number;
  maxPrefixes: number;
  maxSites: number;
}

export interface SitesDeps {
  now: () => number;
  fetchText: (url: string, limits: FetchLimits) => Promise<string>;
  log: Logger;
}

/** Why a CRIC load was refused: the registry's reasons, and 'file' (a path that cannot be read). */
export const SITES_FAILURE_REASONS = [...REGISTRY_FAILURE_REASONS, 'file'] as const;
export type SitesFailureReason = (typeof SITES_FAILURE_REASONS)[number];

export interface SitesStatus extends SiteMapStats {
  /** Where the CRIC prefixes in use came from. */
  cricFrom: 'none' | 'cache' | 'file' | 'download';
  cricLoadedAtMs: number | undefined;
  refreshes: number;
  failures: number;
  failuresByReason: Record<SitesFailureReason, number>;
  lastError: string | undefined;
  /** CRIC entries skipped (wrong type, bad name) in the document in use. */
  cricSkipped: number;
}

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/**
 * Keeps the site map current, like the registry service: the configured prefixes from start,
 * CRIC from the cache file (last good download) at start, then a refresh on a timer. A
 * refresh is used only once it parsed; a failed one keeps the prefixes in use and is counted
 * by reason. Refreshes never overlap: a second caller joins the one in flight.
 */
export class SiteService {
  readonly map: SiteMap;
  /** Site ids for flow-label traffic (the site-pair aggregators key by them). */
  readonly directory: SiteDirectory;
  private cric: CricDocument | undefined;
  private compiled: SiteTableSpec | undefined;
  private readonly tableListeners: ((table: SiteTableSpec) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<boolean> | undefined;
  private cricFrom: SitesStatus['cricFrom'] = 'none';
  private cricLoadedAtMs: number | undefined;
  private cricSkipped = 0;
  private refreshes = 0;
  private failures = 0;
  private lastError: string | undefined;
  private readonly failuresByReason = Object.fromEntries(SITES_FAILURE_REASONS.map((r) => [r, 0])) as Record<SitesFailureReason, number>;

  constructor(
    private readonly config: SitesConfig,
    private readonly deps: SitesDeps,
  ) {
    this.map = new SiteMap(config.prefixes, { maxPrefixes: config.maxPrefixes, maxSites: config.maxSites });
    this.directory = new SiteDirectory(config.maxSites);
    if (config.cricSource && isUrl(config.cricSource) && config.cacheFile) this.loadCache();
  }

  private loadCache(): void {
    let text: string;
    try {
      text = readFileSync(this.config.cacheFile, 'utf8');
    } catch {
      return; // no cache yet
    }
    try {
      this.install(parseCricText(text, this.config.maxPrefixes), 'cache');
    } catch (err) {
      this.deps.log.warn(`ignoring CRIC cache: ${(err as Error).message}`, { cacheFile: this.config.cacheFile });
    }
  }

  private install(doc: CricDocument, from: SitesStatus['cricFrom']): void {
    this.map.setCric(doc);
    this.cric = doc;
    this.compiled = undefined;
    if (this.tableListeners.length > 0) {
      const table = this.table();
      for (const l of this.tableListeners) l(table);
    }
    this.cricFrom = from;
    this.cricLoadedAtMs = this.deps.now();
    this.cricSkipped = doc.skipped;
  }

  /**
   * The site table of flow-label traffic as plain data (it crosses to decode workers):
   * configured prefixes, then the CRIC document in use, with ids from `directory`.
   */
  table(): SiteTableSpec {
    this.compiled ??= compileSiteTable(this.config.prefixes, this.cric, this.directory);
    return this.compiled;
  }

  /** Called with the new table after each CRIC install (not for the one in force when registering). */
  onTable(listener: (table: SiteTableSpec) => void): void {
    this.tableListeners.push(listener);
  }

  /** The site of an address: a configured or CRIC site name, 'unknown' or 'other'. */
  siteOf(address: string): string {
    return this.map.siteOf(address);
  }

  status(): SitesStatus {
    return {
      ...this.map.stats(),
      cricFrom: this.cricFrom,
      cricLoadedAtMs: this.cricLoadedAtMs,
      refreshes: this.refreshes,
      failures: this.failures,
      failuresByReason: { ...this.failuresByReason },
      lastError: this.lastError,
      cricSkipped: this.cricSkipped,
    };
  }

  /** One load of the CRIC document; true when new prefixes were installed. Never rejects. */
  refresh(): Promise<boolean> {
    if (!this.config.cricSource) return Promise.resolve(false);
    this.inFlight ??= this.refreshOnce().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private readSource(): Promise<string> {
    const src = this.config.cricSource;
    const limits = { timeoutMs: this.config.timeoutMs, maxBytes: this.config.maxBytes };
    if (isUrl(src)) return this.deps.fetchText(src, limits);
    try {
      // The size is checked before reading, so an oversized file is never held.
      if (statSync(src).size > limits.maxBytes) throw new RegistryFetchError('oversize', `${src} is larger than ${limits.maxBytes} bytes`);
      return Promise.resolve(readFileSync(src, 'utf8'));
    } catch (err) {
      if (err instanceof RegistryFetchError) throw err;
      throw new SitesLoadError('file', `reading ${src}: ${(err as Error).message}`);
    }
  }

  private async refreshOnce(): Promise<boolean> {
    const src = this.config.cricSource;
    try {
      const text = await this.readSource();
      let doc: CricDocument;
      try {
        doc = parseCricText(text, this.config.maxPrefixes);
      } catch (err) {
        throw new RegistryFetchError('invalid', (err as Error).message, { cause: err });
      }
      this.install(doc, isUrl(src) ? 'download' : 'file');
      if (isUrl(src) && this.config.cacheFile) saveCache(this.config.cacheFile, text);
      this.refreshes++;
      this.lastError = undefined;
      const s = this.map.stats();
      this.deps.log.debug('CRIC sites loaded', { source: src, sites: s.cricSites, prefixes: s.cricPrefixes, skipped: doc.skipped });
      return true;
    } catch (err) {
      const reason: SitesFailureReason =
        err instanceof RegistryFetchError ? err.reason : err instanceof SitesLoadError ? err.reason : 'network';
      this.failures++;
      this.failuresByReason[reason]++;
      this.lastError = (err as Error).message;
      // Rate-limited: an unreachable CRIC fails at every refresh.
      this.deps.log.limited(
        'cric-refresh-failed',
        'warn',
        `CRIC sites from ${src} not loaded, keeping the prefixes in use: ${this.lastError}`,
        {
          source: src,
          reason,
          failures: this.failures,
        },
      );
      return false;
    }
  }

  start(): void {
    if (!this.config.cricSource || this.timer) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.config.refreshSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

class SitesLoadError extends Error {
  constructor(
    readonly reason: SitesFailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'SitesLoadError';
  }
}
