/**
 * Sampling rates: learnt from options records, read from data records, or configured.
 *
 * Sources, in the order a data record's rate is resolved (first that applies wins):
 *  1. per-exporter override from the configuration ('config');
 *  2. fields of the data record itself: samplingInterval 34, samplerRandomInterval 50,
 *     samplingPacketInterval/Space 305/306, samplingSize/Population 309/310 ('record');
 *  3. options joined by the record's samplerId 48 (RFC 7270 / v9 FLOW_SAMPLER_ID), selectorId
 *     302 (RFC 5477 PSAMP) or ingress interface (v9 interface scope) ('options');
 *  4. options for the whole observation domain: 34/35 or 305/306 or 309/310 without a
 *     sampler or selector id in scope ('options');
 *  5. per-exporter default from the configuration ('config');
 *  6. nothing known: the global default (1 unless set), counted as 'unknown'.
 * Tables are looked up on the exact session first, then on (exporter address, domain), so
 * options sent from another source port still apply.
 */
import type { SamplingSource } from '../record.js';

export interface SamplingTable {
  /** Rate for the whole domain, 0 when none known. */
  domainRate: number;
  samplers: Map<number, number>;
  selectors: Map<number, number>;
  interfaces: Map<number, number>;
  /** interfaceName (IE 82) per ifIndex from interface options records (link names). */
  interfaceNames: Map<number, string>;
  /** systemInitTimeMilliseconds (160) from options: base of IPFIX sysUpTime fields (21/22). */
  systemInitMs: number;
}

export function newSamplingTable(): SamplingTable {
  return { domainRate: 0, samplers: new Map(), selectors: new Map(), interfaces: new Map(), interfaceNames: new Map(), systemInitMs: -1 };
}

/** Sampling parameters read from one record (options or data); -1 means absent. */
export interface SamplingFields {
  interval: number; // 34
  algorithm: number; // 35
  samplerId: number; // 48
  samplerMode: number; // 49
  samplerRandomInterval: number; // 50
  selectorId: number; // 302
  packetInterval: number; // 305
  packetSpace: number; // 306
  size: number; // 309
  population: number; // 310
  scopeInterface: number; // v9 interface scope, or IPFIX ingressInterface as a scope field
  systemInitMs: number; // 160
  interfaceName: string | undefined; // 82
}

export function newSamplingFields(): SamplingFields {
  return {
    interval: -1,
    algorithm: -1,
    samplerId: -1,
    samplerMode: -1,
    samplerRandomInterval: -1,
    selectorId: -1,
    packetInterval: -1,
    packetSpace: -1,
    size: -1,
    population: -1,
    scopeInterface: -1,
    systemInitMs: -1,
    interfaceName: undefined,
  };
}

export function resetSamplingFields(f: SamplingFields): void {
  f.interval = f.algorithm = f.samplerId = f.samplerMode = f.samplerRandomInterval = -1;
  f.selectorId = f.packetInterval = f.packetSpace = f.size = f.population = -1;
  f.scopeInterface = f.systemInitMs = -1;
  f.interfaceName = undefined;
}

/**
 * The rate the fields state, or 0 when they state none. An interval of 0 or 1 both mean
 * "every packet" in practice (Cisco sends 0 for unsampled); a population smaller than its
 * sample is nonsense and ignored.
 */
export function rateOf(f: SamplingFields): number {
  if (f.samplerRandomInterval >= 0) return Math.max(1, f.samplerRandomInterval);
  if (f.interval >= 0) return Math.max(1, f.interval);
  // RFC 5476 6.5.2.1: systematic count-based sampling selects `interval` packets then skips
  // `space`, so one packet stands for (interval + space) / interval.
  if (f.packetInterval > 0 && f.packetSpace >= 0) return (f.packetInterval + f.packetSpace) / f.packetInterval;
  // RFC 5476 6.5.2.4/5: random n-out-of-N, samplingSize out of samplingPopulation.
  if (f.size > 0 && f.population >= f.size) return f.population / f.size;
  return 0;
}

function capSet<V>(map: Map<number, V>, key: number, value: V, cap: number): void {
  if (!map.has(key) && map.size >= cap) {
    // Forget the oldest entry (Map keeps insertion order) rather than refusing the newest.
    const first = map.keys().next();
    if (!first.done) map.delete(first.value);
  }
  map.set(key, value);
}

/** Applies one options record to a table. Returns true when it carried sampling information. */
export function applyOptions(t: SamplingTable, f: SamplingFields, cap: number): boolean {
  if (f.systemInitMs >= 0) t.systemInitMs = f.systemInitMs;
  if (f.interfaceName !== undefined && f.scopeInterface >= 0) capSet(t.interfaceNames, f.scopeInterface, f.interfaceName, cap);
  const rate = rateOf(f);
  if (rate === 0) return false;
  if (f.samplerId >= 0) capSet(t.samplers, f.samplerId, rate, cap);
  else if (f.selectorId >= 0) capSet(t.selectors, f.selectorId, rate, cap);
  else if (f.scopeInterface >= 0) capSet(t.interfaces, f.scopeInterface, rate, cap);
  else t.domainRate = rate;
  return true;
}

/** Caller-supplied sampling configuration, keyed by exporter address (no port). */
export interface SamplingConfig {
  /** Rate used when nothing else is known (1 unless set); such records count as 'unknown'. */
  defaultSamplingRate?: number;
}

export interface ResolvedRate {
  rate: number;
  source: SamplingSource;
}

/**
 * Resolves the rate for one record. `f` holds the record's own sampling fields (or is null
 * when its template has none); `inIf` is the record's ingress interface (or -1).
 */
export function resolveRate(
  session: SamplingTable,
  exporter: SamplingTable | undefined,
  f: SamplingFields | null,
  inIf: number,
  cfg: SamplingConfig,
  out: ResolvedRate,
): void {
  if (f !== null) {
    const r = rateOf(f);
    if (r > 0) {
      out.rate = r;
      out.source = 'record';
      return;
    }
    if (f.samplerId >= 0) {
      const v = session.samplers.get(f.samplerId) ?? exporter?.samplers.get(f.samplerId);
      if (v !== undefined) {
        out.rate = v;
        out.source = 'options';
        return;
      }
    }
    if (f.selectorId >= 0) {
      const v = session.selectors.get(f.selectorId) ?? exporter?.selectors.get(f.selectorId);
      if (v !== undefined) {
        out.rate = v;
        out.source = 'options';
        return;
      }
    }
  }
  if (inIf >= 0 && (session.interfaces.size > 0 || (exporter !== undefined && exporter.interfaces.size > 0))) {
    const v = session.interfaces.get(inIf) ?? exporter?.interfaces.get(inIf);
    if (v !== undefined) {
      out.rate = v;
      out.source = 'options';
      return;
    }
  }
  const d = session.domainRate > 0 ? session.domainRate : (exporter?.domainRate ?? 0);
  if (d > 0) {
    out.rate = d;
    out.source = 'options';
    return;
  }
  // Operator defaults and overrides per exporter are applied after decoding, for every
  // protocol alike (src/enrich/sampling.ts); here only what the exporter said, or nothing.
  out.rate = cfg.defaultSamplingRate !== undefined && cfg.defaultSamplingRate >= 1 ? cfg.defaultSamplingRate : 1;
  out.source = 'unknown';
}
