import type { Registry as PromRegistry } from 'prom-client';
import type { FlowProtocol, SamplingSource } from '../../decoders/record.js';
import type { LinkConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { RegistryService } from '../registry/service.js';
import type { TrafficRow, TrafficStore } from '../store/types.js';
import type { ApiSecurity } from './security.js';

/** What the exporters endpoint shows per exporter (one router / agent address). */
export interface ExporterInfo {
  /** Exporter address without the port (IPv4 or IPv6 text). */
  address: string;
  /** Protocols seen from this exporter. */
  protocols: FlowProtocol[];
  /** Transport sessions ("address:port", IPv6 in brackets) seen from it. */
  sessions: string[];
  /** Receive time of the last datagram, ms since the epoch. */
  lastSeenMs: number;
  datagrams: number;
  records: number;
  /** Decode errors by error-catalogue code (decoders/errors.ts), e.g. { truncated: 2 }. */
  errorsByReason: Record<string, number>;
  /** Datagrams that made a decoder throw (a bug in our code, isolated), per decoder. */
  decoderCrashes: Record<string, number>;
  /** Sequence-number discontinuities, and records (datagrams for v9 / sFlow) they imply lost. */
  sequenceGaps: number;
  lostRecords: number;
  /** Sampling rates in force per observation domain, and where each came from. */
  samplingRates: { domain: number; rate: number; source: SamplingSource }[];
  /** IPFIX / NetFlow v9 templates currently known for this exporter (all sessions, domains). */
  liveTemplates: number;
  /**
   * Datagrams dropped before decoding by the per-exporter rate limits: over
   * decoder.maxDatagramsPerSecondPerExporter, or opening a session over
   * decoder.maxNewSessionsPerSecondPerExporter.
   */
  rateLimited: { datagrams: number; sessions: number };
  /** Its IPFIX / NetFlow decoder state: estimated bytes held, and evictions and refusals (all reasons). */
  decoderState: { bytes: number; evictions: number };
  /** Datagrams that ended in zero padding after their last set, and the octets skipped (not errors). */
  padding: { datagrams: number; octets: number };
  /** sFlow data sources of the agent with this address (flow samplers only). */
  sflowSources?: SflowSourceInfo[];
}

/** One sFlow flow-sample source: the rate it states, the rate its sample_pool shows, drops. */
export interface SflowSourceInfo {
  subAgent: number;
  /** Source id class (0 ifIndex, 1 smonVlanDataSource, 2 entPhysicalEntry) and index. */
  sourceIdType: number;
  sourceIdIndex: number;
  /** sampling_rate in the latest sample. */
  samplingRate: number;
  /** Growth of sample_pool per sample seen (sFlow v5 3.1); null before two samples. */
  effectiveRate: number | null;
  /** Packets the agent dropped without sampling (growth of `drops`), and samples lost by sequence numbers. */
  drops: number;
  lostSamples: number;
}

export type HealthStatus = 'ok' | 'degraded' | 'down';

/** One reason the collector is degraded, naming the metric that shows it. */
export interface HealthReason {
  /** A stable identifier: store_write_failing, kernel_drops, ... (README, "Health"). */
  reason: string;
  /** The Prometheus metric to watch (or alert on) for it. */
  metric: string;
  detail: string;
}

/** What /health reports; 'down' answers HTTP 503, 'degraded' too in strict mode, anything else 200. */
export interface HealthInfo {
  status: HealthStatus;
  /** Why the status is not ok (empty when ok). */
  reasons?: HealthReason[];
  /** Per component: listeners, queue, store, registry... */
  checks: Record<string, { status: HealthStatus; message?: string }>;
  /** health.strict: degraded answers 503. */
  strict?: boolean;
}

/** An interface name learned from IPFIX options (interfaceName, IE 82). */
export interface LearnedInterface {
  exporter: string;
  ifIndex: number;
  name: string;
}

export interface ApiLimits {
  /** Largest points per series ((to - from) / step). Default 10000. */
  maxPoints: number;
  /** Largest series per answer; the rest are counted in `omittedGroups`. Default 500. */
  maxGroups: number;
}

/** api.rateLimitPerMinute and api.maxInFlight (here, not in security.ts, so the option table loads no fastify plugin). */
export const DEFAULT_API_RATE_LIMIT_PER_MINUTE = 600;
export const DEFAULT_API_MAX_IN_FLIGHT = 64;

export const DEFAULT_API_LIMITS: Readonly<ApiLimits> = { maxPoints: 10000, maxGroups: 500 };

/** The registry as the API needs it (RegistryService satisfies it). */
export type RegistryView = Pick<RegistryService, 'registry' | 'status'>;

export interface ApiDeps {
  store: TrafficStore;
  registry: RegistryView;
  /** Configured links (config.links). */
  links: readonly LinkConfig[];
  /** Interface names learned from IPFIX options; optional. */
  learnedInterfaces?: () => LearnedInterface[];
  /**
   * The decode stage's latest published snapshot (refreshed on a timer, never per request);
   * the answer is rebuilt only when this returns a different array.
   */
  exporters: () => readonly ExporterInfo[] | Promise<readonly ExporterInfo[]>;
  health: () => HealthInfo;
  metricsRegistry: PromRegistry;
  /**
   * The aggregator's buckets not yet in the store, whole (Aggregator.unwrittenRows), for
   * /api/v1/traffic?provisional=true; absent: provisional answers what the store holds.
   */
  provisional?: () => readonly TrafficRow[];
  /** The firefly marking check (GET /api/v1/fireflies/marking); absent: not offered. */
  marking?: () => MarkingStatus;
  /** Where the built page is (default: the package's dist/web); without its index.html, / says how to build it. */
  pageDir?: string;
  /** transition.nat64TopN: addresses per bucket of /api/v1/transition/nat64-destinations (0 or absent: off). */
  nat64TopN?: number;
  /** Aggregation bucket width (config.aggregation.bucketSeconds): the default and granularity of `step`. */
  bucketSeconds: number;
  /** Clock (ms since the epoch), for `now`-relative times and ages. */
  now: () => number;
  limits?: Partial<ApiLimits>;
  /** Tokens, Host names, CORS, rate and concurrency limits; default DEFAULT_API_SECURITY (no tokens, loopback names). */
  security?: Partial<ApiSecurity>;
  /** The collector's logger (component 'api'); fastify logs through its pino instance. Default: none. */
  log?: Logger;
  /**
   * Where the access log goes (config log.accessLog): one info line per request with method,
   * url, status, response time and remote address. Undefined: no access log.
   */
  accessLog?: Logger;
}

/** What the marking check has counted since the collector started (src/fireflies/marking.ts). */
export interface MarkingStatus {
  sinceMs: number;
  /** Firefly flows the record path checks against (as last sent to it), and those evicted by the cap. */
  flows: number;
  evicted: number;
  counts: readonly import('../fireflies/marking.js').MarkingCount[];
}
