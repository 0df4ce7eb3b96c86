import { summarizeFlowState } from '../../decoders/ipfix/index.js';
import { sessionKey } from '../../decoders/record.js';
import { effectiveSamplingRate } from '../../decoders/sflow/index.js';
import type { ExporterInfo, LearnedInterface, SflowSourceInfo } from '../api/types.js';
import type { DatagramDecoder } from '../pipeline/decoder.js';

/** The exporters endpoint's view of the decoder state (built on request, not on the hot path). */
export function exporterInfos(decoder: DatagramDecoder): ExporterInfo[] {
  const summary = summarizeFlowState(decoder.flowState);
  const templatesByAddr = new Map<string, number>();
  for (const s of summary.sessions) {
    const addr = s.exporter.startsWith('[') ? s.exporter.slice(1, s.exporter.lastIndexOf(']')) : s.exporter.slice(0, s.exporter.lastIndexOf(':'));
    const n = s.domains.reduce((acc, d) => acc + d.templates.length, 0);
    templatesByAddr.set(addr, (templatesByAddr.get(addr) ?? 0) + n);
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
  return decoder.exporters.all().map((e) => ({
    address: e.address,
    protocols: [...e.protocols].sort(),
    sessions: [...e.sessions].sort((a, b) => a - b).map((port) => sessionKey(e.address, port)),
    lastSeenMs: e.lastSeenMs,
    datagrams: e.datagrams,
    records: e.records,
    errorsByReason: Object.fromEntries(e.errorsByCode),
    sequenceGaps: e.sequenceGaps,
    lostRecords: e.lostRecords + e.lostDatagrams + e.lostSamples,
    samplingRates: [...e.samplingRates.values()]
      .sort((a, b) => a.domain - b.domain || b.lastSeenMs - a.lastSeenMs)
      .map((s) => ({ domain: s.domain, rate: s.rate, source: s.source })),
    liveTemplates: templatesByAddr.get(e.address) ?? 0,
    // Matched by agent address: agents normally send from the address they report.
    ...(sflowByAgent.has(e.address) ? { sflowSources: sflowByAgent.get(e.address)! } : {}),
  }));
}

/** Interface names learned from IPFIX interface options (IE 82), per exporter address. */
export function learnedInterfaces(decoder: DatagramDecoder): LearnedInterface[] {
  const out: LearnedInterface[] = [];
  // Keys are "address|domain"; read the tables directly (the stores call this per write).
  for (const [key, table] of decoder.flowState.exporterSampling) {
    if (table.interfaceNames.size === 0) continue;
    const exporter = key.slice(0, key.lastIndexOf('|'));
    for (const [ifIndex, name] of table.interfaceNames) out.push({ exporter, ifIndex, name });
  }
  return out;
}
