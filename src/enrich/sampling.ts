import { CidrSet } from '../../collectors/allowlist.js';
import type { FlowRecord } from '../../decoders/record.js';

/**
 * Operator sampling rules (config `exporters.sampling`), applied to every protocol's records
 * after decoding: an `override` replaces whatever the exporter said (a router known to
 * report its rate wrongly); a `default` fills in only where the exporter said nothing
 * (samplingSource 'unknown'). Rules match an exporter address or CIDR and optionally one
 * observation domain / source id / sFlow sub-agent; the first matching rule wins.
 */
export interface SamplingRule {
  exporter: string;
  domain?: number | undefined;
  rate: number;
  mode: 'default' | 'override';
}

interface CompiledRule {
  exporters: CidrSet;
  domain: number | undefined;
  rate: number;
  override: boolean;
}

export class SamplingRules {
  private readonly rules: CompiledRule[];
  /** Rule index (or -1) per "address|domain"; bounded, cleared when full. */
  private readonly cache = new Map<string, number>();
  private static readonly MAX_CACHE = 8192;

  constructor(rules: readonly SamplingRule[]) {
    this.rules = rules.map((r) => {
      const exporters = new CidrSet([r.exporter], 'sampling rule exporter');
      return { exporters, domain: r.domain, rate: r.rate, override: r.mode === 'override' };
    });
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  private match(address: string, domain: number): number {
    const key = `${address}|${domain}`;
    let idx = this.cache.get(key);
    if (idx === undefined) {
      idx = this.rules.findIndex((r) => (r.domain === undefined || r.domain === domain) && r.exporters.has(address));
      if (this.cache.size >= SamplingRules.MAX_CACHE) this.cache.clear();
      this.cache.set(key, idx);
    }
    return idx;
  }

  /** Applies the matching rule to the record in place. */
  apply(rec: FlowRecord, exporterAddr: string): void {
    const idx = this.match(exporterAddr, rec.domain);
    if (idx < 0) return;
    const rule = this.rules[idx]!;
    if (rule.override || rec.samplingSource === 'unknown') {
      rec.samplingRate = rule.rate;
      rec.samplingSource = 'config';
    }
  }
}
