import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { fetchTextWithTimeout, type FetchLimits } from '../registry/service.js';
import { SiteService, type SitesConfig } from '../sites/service.js';
import type { FlowTableConfig } from './flow-table.js';
import { FireflyTracker } from './tracker.js';

export { FireflyTracker, DEFAULT_FLOW_TABLE_CONFIG, type FireflyEventListener } from './tracker.js';
export { FlowTable, flowKey, durationSecondsOf, throughputOf, type FlowTableConfig, type FlowTableStats } from './flow-table.js';

/** The site service's settings from the configuration (data paths already resolved). */
export function sitesConfigOf(config: Config): SitesConfig {
  const s = config.sites;
  return {
    prefixes: s.prefixes,
    cricSource: s.cric.source,
    refreshSeconds: s.cric.refreshSeconds,
    cacheFile: s.cric.cacheFile,
    timeoutMs: s.cric.timeoutMs,
    maxBytes: s.cric.maxBytes,
    maxPrefixes: s.maxPrefixes,
    maxSites: s.maxSites,
  };
}

export function flowTableConfigOf(config: Config): FlowTableConfig {
  return { ...config.fireflies };
}

/**
 * The site service and the firefly tracker as the daemon wires them: the tracker attributes
 * flows through the service, so a CRIC refresh applies to flows opened after it. The caller
 * starts and stops `sites` (its refresh timer) and calls `tracker.tick()` on its clock.
 */
export function createFireflyTracking(
  config: Config,
  deps: { now: () => number; log: Logger; fetchText?: (url: string, limits: FetchLimits) => Promise<string> },
): { sites: SiteService; tracker: FireflyTracker } {
  const sites = new SiteService(sitesConfigOf(config), {
    now: deps.now,
    fetchText: deps.fetchText ?? fetchTextWithTimeout,
    log: deps.log.child({ component: 'sites' }),
  });
  const tracker = new FireflyTracker(flowTableConfigOf(config), {
    siteOf: (address) => sites.siteOf(address),
    log: deps.log.child({ component: 'fireflies' }),
  });
  return { sites, tracker };
}
