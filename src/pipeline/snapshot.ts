/**
 * The decode stage's published view: plain data (structured-clone safe, so it crosses
 * worker threads as is) of everything the API, metrics, stores and persistence may know
 * about the decoders. Nothing outside the stage reads decoder state; they read this.
 */
import { EVICTION_REASONS, type EvictionReason, newEvictionCounts } from '../../decoders/ipfix/state.js';
import { sessionKey } from '../../decoders/record.js';
import { effectiveSamplingRate } from '../../decoders/sflow/index.js';
import type { ExporterInfo, LearnedInterface, SflowSourceInfo } from '../api/types.js';
import { type DatagramDecoder, newDecodeTotals } from './decoder.js';

/** One exporter as the exporters API shows it, plus the counters metrics need. */
export interface ExporterSnapshot extends ExporterInfo {
  firstSeenMs: number;
  recordsByProtocol: Record<string, number>;
  templateMisses: number;
  unknownSampling: number;
}

export interface DecodeTotals {
  datagrams: number;
  records: number;
  decodeErrors: number;
  templateMisses: number;
  unknownProtocol: number;
  decoderCrashes: number;
  /** Datagrams dropped by the per-exporter rate limits (datagrams/s, new sessions/s). */
  rateLimitedDatagrams: number;
  rateLimitedSessions: number;
}

/** The IPFIX / NetFlow decoder state against its budget (summed over workers). */
export interface DecoderStateStats {
  bytes: number;
  budgetBytes: number;
  sessions: number;
  /** Sessions that have decoded data records (the ones new sessions cannot evict). */
  activeSessions: number;
  templates: number;
  /** Evictions and refusals per reason (EVICTION_REASONS). */
  evictions: Record<EvictionReason, number>;
}

export interface DecodeSnapshot {
  /** When it was taken (the stage's clock). */
  timeMs: number;
  exporters: ExporterSnapshot[];
  /** Interface names learnt from IPFIX interface options (IE 82), per exporter address. */
  interfaces: LearnedInterface[];
  totals: DecodeTotals;
  decoderState: DecoderStateStats;
  /** Crash fixtures kept and not kept (over the limits, or no directory). */
  crashFixtures: { written: number; skipped: number };
}

export function emptySnapshot(timeMs: number): DecodeSnapshot {
  return {
    timeMs,
    exporters: [],
    interfaces: [],
    totals: newDecodeTotals(),
    decoderState: { bytes: 0, budgetBytes: 0, sessions: 0, activeSessions: 0, templates: 0, evictions: newEvictionCounts() },
    crashFixtures: { written: 0, skipped: 0 },
  };
}

/** Takes the snapshot of one decoding context (built on request, never per datagram). */
export function snapshotOf(decoder: DatagramDecoder, timeMs: number): DecodeSnapshot {
  // Counted straight from the sessions: this runs every second, and naming every field of
  // every template (summarizeFlowState) would cost ~100k strings per second at 10k templates.
  const flow = decoder.flowState;
  const templatesByAddr = new Map<string, number>();
  let templates = 0;
  for (const s of flow.sessions.values()) {
    let n = 0;
    for (const d of s.domains.values()) n += d.templates.size;
    templates += n;
    templatesByAddr.set(s.address, (templatesByAddr.get(s.address) ?? 0) + n);
  }
  const sflowByAgent = new Map<string, SflowSourceInfo[]>();
  for (const agent of decoder.sflowState.agents.values()) {
    for (const src of agent.sources.values()) {
      if (src.kind !== 'flow') continue;
      let list = sflowByAgent.get(agent.agent);
      if (!list) sflowByAgent.set(agent.agent, (list = []));
      list.push({
        subAgent: agent.subAgent,
        sourceIdType: src.sourceIdType,
        sourceIdIndex: src.sourceIdIndex,
        samplingRate: src.samplingRate,
        effectiveRate: effectiveSamplingRate(src) ?? null,
        drops: src.dropped,
        lostSamples: src.lost,
      });
    }
  }
  const exporters = decoder.exporters.all().map((e): ExporterSnapshot => ({
    address: e.address,
    protocols: [...e.protocols].sort(),
    sessions: [...e.sessions].sort((a, b) => a - b).map((port) => sessionKey(e.address, port)),
    firstSeenMs: e.firstSeenMs,
    lastSeenMs: e.lastSeenMs,
    datagrams: e.datagrams,
    records: e.records,
    recordsByProtocol: Object.fromEntries(
      [...e.recordsByProtocol.values()].filter((c) => c.records > 0).map((c) => [c.protocol, c.records]),
    ),
    errorsByReason: Object.fromEntries(e.errorsByCode),
    decoderCrashes: Object.fromEntries(e.crashesByDecoder),
    templateMisses: e.templateMisses,
    unknownSampling: e.unknownSampling,
    sequenceGaps: e.sequenceGaps,
    lostRecords: e.lostRecords + e.lostDatagrams + e.lostSamples,
    samplingRates: [...e.samplingRates.values()]
      .sort((a, b) => a.domain - b.domain || b.lastSeenMs - a.lastSeenMs)
      .map((s) => ({ domain: s.domain, rate: s.rate, source: s.source })),
    liveTemplates: templatesByAddr.get(e.address) ?? 0,
    rateLimited: { datagrams: e.rateLimitedDatagrams, sessions: e.rateLimitedSessions },
    decoderState: { bytes: flow.addresses.get(e.address)?.bytes ?? 0, evictions: flow.evictionsByAddress.get(e.address) ?? 0 },
    padding: { datagrams: e.paddedDatagrams, octets: e.paddingOctets },
    // Matched by agent address: agents normally send from the address they report.
    ...(sflowByAgent.has(e.address) ? { sflowSources: sflowByAgent.get(e.address)! } : {}),
  }));
  const interfaces: LearnedInterface[] = [];
  for (const [key, table] of decoder.flowState.exporterSampling) {
    if (table.interfaceNames.size === 0) continue;
    const exporter = key.slice(0, key.lastIndexOf('|'));
    for (const [ifIndex, name] of table.interfaceNames) interfaces.push({ exporter, ifIndex, name });
  }
  return {
    timeMs,
    exporters,
    interfaces,
    totals: { ...decoder.totals },
    decoderState: {
      bytes: flow.bytes,
      budgetBytes: flow.limits.stateBudgetBytes,
      sessions: flow.sessions.size,
      activeSessions: flow.lru[1].size,
      templates,
      evictions: { ...flow.evictions },
    },
    crashFixtures: { written: decoder.crashFixtures.written, skipped: decoder.crashFixtures.skipped },
  };
}

function addRecord(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/**
 * One view of several workers' snapshots. Exporters are sharded, so an address appears in
 * one worker only, except the 'other' entry each worker's bounded table may fold into; those
 * are summed.
 */
export function mergeSnapshots(parts: readonly DecodeSnapshot[], timeMs: number): DecodeSnapshot {
  const out = emptySnapshot(timeMs);
  const byAddress = new Map<string, ExporterSnapshot>();
  for (const p of parts) {
    for (const e of p.exporters) {
      const prev = byAddress.get(e.address);
      if (!prev) {
        // A copy: the sums below must not change the workers' snapshots, which are merged
        // again at the next refresh.
        byAddress.set(e.address, {
          ...e,
          recordsByProtocol: { ...e.recordsByProtocol },
          errorsByReason: { ...e.errorsByReason },
          decoderCrashes: { ...e.decoderCrashes },
          rateLimited: { ...e.rateLimited },
          decoderState: { ...e.decoderState },
        });
        continue;
      }
      prev.protocols = [...new Set([...prev.protocols, ...e.protocols])].sort();
      prev.sessions = [...new Set([...prev.sessions, ...e.sessions])];
      prev.firstSeenMs = Math.min(prev.firstSeenMs, e.firstSeenMs);
      prev.lastSeenMs = Math.max(prev.lastSeenMs, e.lastSeenMs);
      prev.datagrams += e.datagrams;
      prev.records += e.records;
      addRecord(prev.recordsByProtocol, e.recordsByProtocol);
      addRecord(prev.errorsByReason, e.errorsByReason);
      addRecord(prev.decoderCrashes, e.decoderCrashes);
      prev.templateMisses += e.templateMisses;
      prev.unknownSampling += e.unknownSampling;
      prev.sequenceGaps += e.sequenceGaps;
      prev.lostRecords += e.lostRecords;
      prev.samplingRates = [...prev.samplingRates, ...e.samplingRates];
      prev.liveTemplates += e.liveTemplates;
      prev.rateLimited.datagrams += e.rateLimited.datagrams;
      prev.rateLimited.sessions += e.rateLimited.sessions;
      prev.decoderState.bytes += e.decoderState.bytes;
      prev.decoderState.evictions += e.decoderState.evictions;
      prev.padding.datagrams += e.padding.datagrams;
      prev.padding.octets += e.padding.octets;
      if (e.sflowSources) prev.sflowSources = [...(prev.sflowSources ?? []), ...e.sflowSources];
    }
    out.interfaces.push(...p.interfaces);
    for (const k of Object.keys(out.totals) as (keyof DecodeTotals)[]) out.totals[k] += p.totals[k];
    const ds = out.decoderState;
    ds.bytes += p.decoderState.bytes;
    ds.budgetBytes += p.decoderState.budgetBytes;
    ds.sessions += p.decoderState.sessions;
    ds.activeSessions += p.decoderState.activeSessions;
    ds.templates += p.decoderState.templates;
    for (const r of EVICTION_REASONS) ds.evictions[r] += p.decoderState.evictions[r];
    out.crashFixtures.written += p.crashFixtures.written;
    out.crashFixtures.skipped += p.crashFixtures.skipped;
  }
  out.exporters = [...byAddress.values()];
  return out;
}
