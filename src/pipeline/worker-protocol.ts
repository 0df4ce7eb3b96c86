/** Messages between the main thread and decode workers (all structured-clone plain data). */
import type { Firefly } from '../../decoders/firefly/types.js';
import type { PersistedFlowState } from '../../decoders/ipfix/index.js';
import type { AggregatorConfig } from '../aggregate/config.js';
import type { SiteTableSpec } from '../enrich/site-lookup.js';
import type { MarkingCount, MarkingUpdate } from '../fireflies/marking.js';
import type { LogFields, LogLevel, LogThreshold } from '../log.js';
import type { Nat64TopPart } from '../enrich/nat64-top.js';
import type { DecodeSnapshot } from './snapshot.js';
import type { DecodeStageConfig } from './stage.js';

export interface WorkerInit {
  index: number;
  stage: DecodeStageConfig;
  /** The aggregator settings that decide bucket and split (width, flow limits). */
  aggregation: Partial<AggregatorConfig>;
  /** This worker's share of the saved decoder state, if any. */
  saved: PersistedFlowState | undefined;
  logLevel: LogThreshold;
  /** How often partial sums go to the main thread. */
  flushMs: number;
  /** Enrichment: the NAT64 prefixes, and the site table (ids from the main thread's directory). */
  nat64Prefixes: readonly string[];
  sites: SiteTableSpec;
  /** The firefly flows the marking check knows at start (later changes come as 'marking'). */
  marking: MarkingUpdate;
  /** transition.nat64TopN: counters per bucket of the NAT64 IPv4 top list (0 or absent: off). */
  nat64TopN?: number;
}

export type ToWorker =
  | { type: 'batch'; buffer: ArrayBuffer; length: number; count: number }
  | { type: 'snapshot'; id: number }
  | { type: 'state'; id: number; nowMs: number }
  /** A new site table (a CRIC refresh). */
  | { type: 'sites'; sites: SiteTableSpec }
  /** Firefly flows added or dropped for the marking check. */
  | { type: 'marking'; update: MarkingUpdate }
  | { type: 'stop' };

/** An accepted firefly decoded in a worker, with its message's bytes (for forwarding). */
export interface WorkerFirefly {
  firefly: Firefly;
  receivedMs: number;
  exporterAddr: string;
  payload: Uint8Array;
}

export type FromWorker =
  | { type: 'ready' }
  /** The fireflies of one batch, before its 'done' (the main thread hands them to its target). */
  | { type: 'fireflies'; items: WorkerFirefly[] }
  /** Partial sums per link, and per site pair (empty while no site table is in force). */
  | {
      type: 'sums';
      parts: Float64Array;
      exporters: string[];
      siteParts: Float64Array;
      siteExporters: string[];
      /** Marking-check outcomes counted since the last sums. */
      marking: MarkingCount[];
    }
  /** A batch decoded; its buffer comes back for reuse. */
  | { type: 'done'; count: number; buffer: ArrayBuffer }
  /** Partial NAT64 IPv4 top lists per bucket (src/enrich/nat64-top.ts), sent with the sums. */
  | { type: 'nat64Top'; parts: Nat64TopPart[] }
  | { type: 'snapshot'; id: number; snapshot: DecodeSnapshot }
  | { type: 'state'; id: number; state: PersistedFlowState }
  /** A line the worker's logger let through (already rate-limited there); fields are plain data. */
  | { type: 'log'; level: LogLevel; msg: string; fields: LogFields | undefined }
  | { type: 'stopped' };
