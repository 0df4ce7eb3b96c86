/**
 * The mutation fuzzer in npm test: a short budget over every fixture datagram, and the
 * corpus of interesting inputs kept from longer runs (npm run fuzz) replayed exactly.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CORPUS_DIR, readCorpus } from './corpus.js';
import { counterValue, fuzz, loadCaptures, MAX_INPUT_BYTES, mutate, MUTATIONS, observeFresh, primedDecoder, rng } from './engine.js';

describe('mutation fuzzer', () => {
  it('seeds from every fixture capture: IPFIX, NetFlow v5 and v9, sFlow', () => {
    const captures = loadCaptures();
    expect(captures.map((c) => c.name)).toEqual([
      'ipfix_pmacct_nfprobe_flowlabel',
      'ipfix_pmacct_sampled',
      'ipfix_softflowd_psamp',
      'ipfix_softflowd_sampled',
      'ipfix_softflowd_vlan',
      'netflow5_fprobe',
      'netflow9_pmacct_flowlabel',
      'netflow9_pmacct_sampled',
      'sflow_pmacct_direction',
      'sflow_pmacct_sampled',
      'sflow_pmacct_sfprobe_rate1',
    ]);
    for (const c of captures) expect(c.seeds.length, c.name).toBeGreaterThan(0);
    // Templates prime the fresh decoders of IPFIX and NetFlow v9 captures only.
    expect(captures.filter((c) => c.primers.length > 0).every((c) => /^(ipfix|netflow9)_/.test(c.name))).toBe(true);
  });

  it('mutations are reproducible from the seed and stay within MAX_INPUT_BYTES', () => {
    const input = Uint8Array.from({ length: 1400 }, (_, i) => i & 0xff);
    const other = Uint8Array.from({ length: 1500 }, (_, i) => 255 - (i & 0xff));
    for (const kind of MUTATIONS) {
      const a = mutate(input, kind, other, rng(5));
      expect(mutate(input, kind, other, rng(5)), kind).toEqual(a);
      expect(a.length, kind).toBeLessThanOrEqual(MAX_INPUT_BYTES);
    }
    expect(mutate(input, 'truncate', other, rng(1)).length).toBeLessThan(input.length);
    expect(input[0]).toBe(0); // inputs are never changed in place
  });

  it('3 s of mutants: no throw, no decoder-crash, only typed errors, finite non-negative counts, bounded memory', () => {
    const report = fuzz({ seconds: 3, seed: 20261129, known: readCorpus().map((e) => e.signature) });
    expect(report.violations.map((v) => `${v.problem} ${Buffer.from(v.input).toString('hex')}`)).toEqual([]);
    expect(report.executions).toBeGreaterThan(1000);
    expect(Object.values(report.byMutation).every((n) => n > 0)).toBe(true);
    expect(report.heapGrowthBytes).toBeLessThan(64 * 1024 * 1024);
    console.log(
      `fuzz: ${report.executions} executions in ${report.seconds.toFixed(1)} s (${Math.round(report.executions / report.seconds)}/s), heap growth ${(report.heapGrowthBytes / 1048576).toFixed(1)} MB, ${report.findings.length} signatures not in the corpus`,
    );
  }, 30_000);

  describe('corpus replay (test/fuzz/corpus)', () => {
    const entries = readCorpus();
    const captures = new Map(loadCaptures().map((c) => [c.name, c]));

    it('holds the kept inputs, each small', () => {
      expect(entries.length).toBeGreaterThan(50);
      for (const e of entries) expect(readFileSync(join(CORPUS_DIR, e.file)).length, e.file).toBeLessThanOrEqual(MAX_INPUT_BYTES);
      expect(new Set(entries.map((e) => e.signature)).size).toBe(entries.length);
    });

    it.each(entries.map((e) => [`${e.file} ${e.counter}`, e] as const))('%s', (_name, e) => {
      const input = new Uint8Array(readFileSync(join(CORPUS_DIR, e.file)));
      const capture = captures.get(e.capture);
      expect(capture).toBeDefined();
      const seed = { capture: e.capture, payload: input, srcAddr: e.srcAddr, srcPort: e.srcPort };
      const o = observeFresh(capture, seed, input);
      expect(o.problem).toBeUndefined();
      expect(o.signature).toBe(e.signature);
      // The named counter moves in the exporter table, as the daemon counts it.
      const d = primedDecoder(capture);
      const before = counterValue(d, e.srcAddr, e.counter);
      d.decode(input, e.srcAddr, e.srcPort, Date.UTC(2025, 8, 4, 12, 0, 0), 'any');
      expect(counterValue(d, e.srcAddr, e.counter)).toBeGreaterThan(before);
    });
  });
});
