import { describe, expect, it } from 'vitest';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { warmUp, warmUpDatagrams, warmUpOptions } from '../../src/pipeline/warmup.js';

// rate/IP version/label of each record, as the synthetic datagrams are written in warmup.ts
const L = ['65540', '133144', '19496', '0', '261884', '74565', '65540', '133144']; // 0x10004, 0x20818, 0x04c28, 0, 0x3fefc, 0x12345, ...
const EXPECTED: Record<string, string[]> = {
  ipfix: [...L.map((l) => `1/6/${l}`), ...Array<string>(8).fill('1/4/-'), ...L.map((l) => `4/6/${l}`)],
  netflow9: L.map((l) => `1/6/${l}`),
  netflow5: Array<string>(8).fill('10/4/-'),
  sflow: ['1/6/65540', '512/6/133144', '1/4/-', '512/6/0', '1/6/261884', '512/4/-', '1/6/65540', '512/6/133144'],
};

describe('decode path warm-up', () => {
  it('every synthetic datagram decodes cleanly, through every branch it is meant to take', () => {
    const now = 1_760_000_000_000;
    const dec = new DatagramDecoder();
    const seen: Record<string, string[]> = {};
    for (const d of warmUpDatagrams(now)) {
      const out = dec.decode(d.payload, '192.0.2.1', 1000, now);
      expect([d.protocol, out.errors.map((e) => e.message)]).toEqual([d.protocol, []]);
      seen[d.protocol] = out.records.map((r) => `${r.samplingRate}/${r.ipVersion}/${r.flowLabel ?? '-'}`);
    }
    expect(seen).toEqual(EXPECTED);
  });

  it('runs rounds x a cycle of 8 datagrams per protocol through decoder and aggregator without an error', () => {
    // per cycle: 8 IPFIX datagrams of 24 records, 8 each of v9, v5 and sFlow with 8
    expect(warmUp(5, 1_760_000_000_000)).toMatchObject({ datagrams: 5 * 32, records: 5 * 8 * 48, errors: 0 });
  });

  it("takes the live options' shape without their effects: no template log, no crash fixtures, limits that never refuse", () => {
    const templateEvents: unknown[] = [];
    const live = {
      ...DEFAULT_DECODER_OPTIONS,
      crashDir: '/nonexistent/crashes',
      onTemplate: (e: unknown) => templateEvents.push(e),
      rateLimits: { datagramsPerSecond: 1, newSessionsPerSecond: 1 },
    };
    const opts = warmUpOptions(live);
    expect(opts.crashDir).toBe('');
    expect(opts.rateLimits).toEqual({ datagramsPerSecond: Number.MAX_SAFE_INTEGER, newSessionsPerSecond: Number.MAX_SAFE_INTEGER });
    expect(opts.onTemplate).toBeTypeOf('function');
    // With the live limits (1 datagram and 1 new session a second) nearly everything would be
    // refused; the second half's rounds are new sessions, each opening with its templates.
    expect(warmUp(10, 1_760_000_000_000, live)).toMatchObject({ datagrams: 10 * 32, records: 10 * 8 * 48, errors: 0 });
    expect(templateEvents).toEqual([]);
    expect(live.rateLimits).toEqual({ datagramsPerSecond: 1, newSessionsPerSecond: 1 });
    expect(warmUpOptions(DEFAULT_DECODER_OPTIONS)).toEqual(DEFAULT_DECODER_OPTIONS);
  });
});
