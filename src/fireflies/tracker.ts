import { normalizeAddress } from '../../collectors/allowlist.js';
import type { Firefly, FireflyFlowEvent } from '../../decoders/firefly/types.js';
import type { Logger } from '../log.js';
import { FlowTable, type FlowTableConfig, type FlowTableStats } from './flow-table.js';

/** Defaults of the fireflies.* options (src/config/options.ts takes them from here). */
export const DEFAULT_FLOW_TABLE_CONFIG: FlowTableConfig = {
  // 100,000 live flows: ~48 MB at FLOW_ENTRY_BYTES, far above the few thousand
  // concurrent transfers of a large site.
  maxFlows: 100_000,
  // XRootD sends only start and end, and a big transfer can last hours: a day before giving up.
  flowTimeoutSeconds: 86_400,
  // Both ends' and XRootD's swapped copies arrive within seconds of each other.
  duplicateWindowSeconds: 60,
};

export type FireflyEventListener = (event: FireflyFlowEvent) => void;

/**
 * What the firefly receive path calls for every accepted firefly: the flow table with site
 * attribution, its events fanned out to the listeners (the per-bucket sums, tests). The
 * owner drives time: tick(nowMs) expires idle flows (the collector calls it on its bucket
 * timer); nothing here starts a timer. A listener that throws is logged and does not stop
 * the others or the table.
 */
export class FireflyTracker {
  private readonly table: FlowTable;
  private readonly listeners: FireflyEventListener[] = [];

  constructor(
    config: FlowTableConfig,
    private readonly deps: { siteOf: (address: string) => string; log: Logger },
  ) {
    this.table = new FlowTable(config, { siteOf: deps.siteOf, emit: (e) => this.emit(e) });
  }

  /** `exporterAddr` is the sending host's address (dual-stack ::ffff: forms are folded to IPv4). */
  accept(f: Firefly, receivedMs: number, exporterAddr: string): void {
    this.table.accept(f, receivedMs, normalizeAddress(exporterAddr));
  }

  tick(nowMs: number): void {
    this.table.tick(nowMs);
  }

  onEvent(listener: FireflyEventListener): void {
    this.listeners.push(listener);
  }

  stats(): FlowTableStats {
    return this.table.stats();
  }

  private emit(event: FireflyFlowEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.deps.log.limited('firefly-listener', 'error', `firefly event listener failed: ${(err as Error).message}`, {
          kind: event.kind,
        });
      }
    }
  }
}
