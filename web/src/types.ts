/** The parts of the public API's answers the page reads (see /docs for the whole). */

export interface Sums {
  bytes: number;
  packets: number;
  records: number;
}

export interface Point extends Sums {
  timeMs: number;
  bitsPerSecond: number;
  packetsPerSecond: number;
  provisional?: boolean;
}

export type Group = Record<string, string | number | null>;

export interface TrafficAnswer {
  fromMs: number;
  toMs: number;
  stepSeconds: number;
  bucketSeconds: number;
  series: { group: Group; points: Point[]; totals: Sums & { bitsPerSecond: number; packetsPerSecond: number } }[];
  totals: Sums & { bitsPerSecond: number; packetsPerSecond: number };
  omittedGroups: number;
}

export interface LinkEntry {
  name: string | null;
  link: string;
  exporter: string;
  ifIndex: number | null;
  capacityBps: number | null;
  source: string;
  traffic: { in: Sums; out: Sums };
}

export interface LinksAnswer {
  links: LinkEntry[];
  omittedLinks: number;
}

/**
 * One row of /api/v1/exporters as the page reads it. The page keeps its own copy of the wire
 * shapes: importing src/api/types.ts would typecheck the server's dependencies with the page
 * (17 s instead of 2 s on every build).
 */
export interface Exporter {
  address: string;
  protocols: string[];
  lastSeenAgeSeconds: number;
  datagrams: number;
  records: number;
  errorsByReason: Record<string, number>;
  decoderCrashes: Record<string, number>;
  sequenceGaps: number;
  lostRecords: number;
  samplingRates: { domain: number; rate: number; source: string }[];
  liveTemplates: number;
  sflowSources?: { subAgent: number; sourceIdIndex: number; samplingRate: number; effectiveRate: number | null }[];
}

export interface Health {
  status: 'ok' | 'degraded' | 'down';
  version: string;
  reasons: { reason: string; metric: string; detail: string }[];
  checks: Record<string, { status: string; message?: string }>;
}

export interface Experiments {
  registry: { source: string; modified: string | null; loadedAgeSeconds: number; lastError: string | null };
  communities: { id: number; name: string; activities: { id: number; name: string }[] }[];
}

export interface FirefliesAnswer {
  series: {
    group: Group;
    totals: { flowsStarted: number; flowsEnded: number; flowsExpired: number; bytes: number; bitsPerSecond: number };
  }[];
  totals: { flowsStarted: number; flowsEnded: number };
}

/** IPv4 / IPv6 / NAT64 sums of /api/v1/transition (shares null without traffic). */
export interface TransitionSums {
  ipv4Bytes: number;
  ipv6Bytes: number;
  nat64Bytes: number;
  ipv4Packets: number;
  ipv6Packets: number;
  nat64Packets: number;
  unknownBytes: number;
  unknownPackets: number;
  ipv6Share: number | null;
  nat64Share: number | null;
}

export interface TransitionAnswer {
  series: { group: Group; totals: TransitionSums }[];
  totals: TransitionSums;
  omittedGroups: number;
}

export interface Nat64DestinationsAnswer {
  approximate: boolean;
  topN: number;
  destinations: { address: string; bytes: number; packets: number; errorBytes: number; buckets: number }[];
  omitted: number;
}

export type MarkingOutcome = 'agree' | 'mismatch' | 'unmarked' | 'notExported' | 'ipv4';

export interface MarkingAnswer {
  sinceMs: number;
  flows: number;
  rows: {
    community: number;
    communityName: string;
    activity: number;
    activityName: string;
    srcSite: string;
    dstSite: string;
    records: Record<MarkingOutcome, number>;
    bytes: Record<MarkingOutcome, number>;
    agreeShare: number | null;
    carried: { community: number; activity: number; records: number }[];
  }[];
  omittedRows: number;
}
