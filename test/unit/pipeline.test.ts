import { describe, expect, it } from 'vitest';
import { emptyRecord } from '../../decoders/record.js';
import { isNetflowOrIpfix, isSflow5 } from '../../src/pipeline/protocols.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { SamplingRules } from '../../src/enrich/sampling.js';
import { f, ipfixDataSet, ipfixMessage, ipfixTemplateSet, v5Datagram } from '../builders/ipfix.js';

describe('protocol detection', () => {
  it('tells sFlow v5 (32-bit version) from NetFlow v5/v9 and IPFIX (16-bit version)', () => {
    const kind = (p: Uint8Array): string => (isSflow5(p) ? 'sflow' : isNetflowOrIpfix(p) ? 'flow' : 'unknown');
    expect(kind(Uint8Array.of(0, 0, 0, 5, 0, 0, 0, 1))).toBe('sflow');
    expect(kind(Uint8Array.of(0, 5, 0, 2))).toBe('flow');
    expect(kind(Uint8Array.of(0, 9, 0, 1))).toBe('flow');
    expect(kind(Uint8Array.of(0, 10, 0, 16))).toBe('flow');
    expect(kind(Uint8Array.of(0, 4, 0, 1))).toBe('unknown');
    expect(kind(Uint8Array.of(0, 10))).toBe('unknown');
  });
});

describe('operator sampling rules', () => {
  const rec = (domain: number, rate: number, source: 'unknown' | 'options') => ({
    ...emptyRecord('ipfix', 'x', domain),
    samplingRate: rate,
    samplingSource: source,
  });

  it('override beats the exporter; default fills only unknown; CIDR and domain match; first rule wins', () => {
    const rules = new SamplingRules([
      { exporter: '192.0.2.0/24', domain: 7, rate: 100, mode: 'override' },
      { exporter: '192.0.2.0/24', rate: 10, mode: 'default' },
      { exporter: '2001:db8::1', rate: 3, mode: 'override' },
    ]);
    const a = rec(7, 512, 'options');
    rules.apply(a, '192.0.2.9');
    expect([a.samplingRate, a.samplingSource]).toEqual([100, 'config']);
    const b = rec(1, 512, 'options');
    rules.apply(b, '192.0.2.9');
    expect([b.samplingRate, b.samplingSource]).toEqual([512, 'options']);
    const c = rec(1, 1, 'unknown');
    rules.apply(c, '192.0.2.9');
    expect([c.samplingRate, c.samplingSource]).toEqual([10, 'config']);
    const d = rec(1, 1, 'unknown');
    rules.apply(d, '198.51.100.1');
    expect([d.samplingRate, d.samplingSource]).toEqual([1, 'unknown']);
    const e = rec(0, 64, 'options');
    rules.apply(e, '2001:db8::1');
    expect([e.samplingRate, e.samplingSource]).toEqual([3, 'config']);
  });
});

describe('operator sampling rules through the decoding context (every protocol alike)', () => {
  const recs = [{ src: '10.0.0.1', dst: '10.0.0.2', packets: 2, bytes: 100 }];
  it('NetFlow v5: a default fills an unsampled header, an override beats a sampled one; unknownSampling counts what stays unknown', () => {
    const dec = new DatagramDecoder({
      ...DEFAULT_DECODER_OPTIONS,
      samplingRules: [
        { exporter: '10.0.0.1', rate: 10, mode: 'default' },
        { exporter: '10.0.0.2', rate: 7, mode: 'override' },
      ],
    });
    expect(dec.decode(v5Datagram({ flowSequence: 0 }, recs), '10.0.0.1', 2055, 0).records[0]).toMatchObject({
      samplingRate: 10,
      samplingSource: 'config',
    });
    expect(dec.decode(v5Datagram({ samplingInterval: 100, flowSequence: 0 }, recs), '10.0.0.2', 2055, 0).records[0]).toMatchObject({
      samplingRate: 7,
      samplingSource: 'config',
    });
    expect(dec.decode(v5Datagram({ flowSequence: 0 }, recs), '10.0.0.3', 2055, 0).records[0]).toMatchObject({
      samplingRate: 1,
      samplingSource: 'unknown',
    });
    expect(dec.exporters.all().map((e) => [e.address, e.unknownSampling])).toEqual([
      ['10.0.0.1', 0],
      ['10.0.0.2', 0],
      ['10.0.0.3', 1],
    ]);
  });
});

describe('DatagramDecoder', () => {
  const fields = [f('octetDeltaCount', 4), f('packetDeltaCount', 4), f('ipVersion', 1)];
  const msg = ipfixMessage({ domain: 3 }, [
    ipfixTemplateSet([{ id: 256, fields }]),
    ipfixDataSet(256, fields, [
      [1000, 10, 6],
      [500, 5, 4],
    ]),
  ]);

  it('applies the configured default rate to records whose rate is unknown and counts per exporter', () => {
    const dec = new DatagramDecoder({ ...DEFAULT_DECODER_OPTIONS, samplingRules: [{ exporter: '10.0.0.1', rate: 64, mode: 'default' }] });
    const out = dec.decode(msg, '10.0.0.1', 4000, 1_000);
    expect(out.records.map((r) => [r.bytes, r.samplingRate, r.samplingSource])).toEqual([
      [1000, 64, 'config'],
      [500, 64, 'config'],
    ]);
    const ex = dec.exporters.all()[0]!;
    expect([ex.address, ex.datagrams, ex.records, [...ex.sessions], [...ex.protocols]]).toEqual(['10.0.0.1', 1, 2, [4000], ['ipfix']]);
    expect([...ex.samplingRates.values()]).toEqual([{ domain: 3, rate: 64, source: 'config', records: 2, lastSeenMs: 1_000 }]);
  });

  it('counts garbage as a typed error per exporter without throwing', () => {
    const dec = new DatagramDecoder();
    const out = dec.decode(Uint8Array.of(1, 2, 3, 4, 5), '10.0.0.2', 1, 0);
    expect(out.outcome.protocol).toBeUndefined();
    expect(out.errors.map((e) => e.code)).toEqual(['bad-version']);
    expect(Object.fromEntries(dec.exporters.all()[0]!.errorsByCode)).toEqual({ 'bad-version': 1 });
    expect(dec.totals).toMatchObject({ datagrams: 1, decodeErrors: 1, unknownProtocol: 1 });
  });

  it('an outcome stays as it was after later datagrams (the flow decoder reuses its result object)', () => {
    const dec = new DatagramDecoder();
    // A data set for a template never sent (held, a template miss), then a truncated message.
    const early = dec.decode(ipfixMessage({ domain: 3 }, [ipfixDataSet(300, fields, [[1, 1, 6]])]), '10.0.0.3', 1, 0);
    const bad = dec.decode(msg.subarray(0, 20), '10.0.0.3', 1, 0);
    const good = dec.decode(msg, '10.0.0.3', 1, 0);
    expect([early.outcome.templateMisses, early.errors.length]).toEqual([1, 0]);
    expect(bad.errors.map((e) => e.code)).toEqual(['truncated']);
    expect([bad.outcome.records, bad.outcome.templateMisses]).toEqual([0, 0]);
    expect([good.errors.length, good.outcome.records, good.outcome.templateMisses]).toEqual([0, 2, 0]);
    expect(good.records.map((r) => r.bytes)).toEqual([1000, 500]);
  });
});
