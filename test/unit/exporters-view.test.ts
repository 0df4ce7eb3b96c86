import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { DatagramDecoder } from '../../src/pipeline/decoder.js';
import { type DecodeSnapshot, emptySnapshot, mergeSnapshots, snapshotOf } from '../../src/pipeline/snapshot.js';
import { fixturePath } from '../support/expected.js';

function exporterInfos(dec: DatagramDecoder) {
  return snapshotOf(dec, 0).exporters;
}

function run(...files: string[]): DatagramDecoder {
  const dec = new DatagramDecoder();
  for (const f of files) for (const d of readCaptureFile(fixturePath(f)).datagrams) dec.decode(d.payload, d.srcAddr, d.srcPort, d.timeMs);
  return dec;
}

describe('exporters view', () => {
  it('shows the sFlow rate stated and the rate sample_pool shows (pmacct sfprobe at 1:4)', () => {
    const [ex] = exporterInfos(run('sflow_pmacct_sampled.pcap'));
    // truth: 369 samples, sample_pool from 2 to 1437: 1435 pooled packets over 368 further samples
    expect(ex!.sflowSources).toEqual([
      { subAgent: 24, sourceIdType: 0, sourceIdIndex: 1, samplingRate: 4, effectiveRate: 1435 / 368, drops: 0, lostSamples: 0 },
    ]);
    expect(ex!.samplingRates).toEqual([{ domain: 24, rate: 4, source: 'header' }]);
  });

  it('shows IPFIX sampling joined from options and the live templates', () => {
    const [ex] = exporterInfos(run('ipfix_pmacct_sampled.pcap'));
    expect(ex).toMatchObject({ protocols: ['ipfix'], samplingRates: [{ domain: expect.any(Number), rate: 4, source: 'options' }] });
    expect(ex!.liveTemplates).toBeGreaterThan(0);
    expect(ex!.sflowSources).toBeUndefined();
  });
});

describe('merging worker snapshots', () => {
  it("sums an address two workers both report (their bounded tables' 'other'), without changing the parts", () => {
    const part = (datagrams: number): DecodeSnapshot => {
      const s = emptySnapshot(0);
      s.exporters.push({
        address: 'other',
        protocols: ['ipfix'],
        sessions: [],
        firstSeenMs: 0,
        lastSeenMs: 0,
        datagrams,
        records: 2 * datagrams,
        recordsByProtocol: { ipfix: 2 * datagrams },
        errorsByReason: { truncated: 1 },
        decoderCrashes: {},
        templateMisses: 0,
        unknownSampling: 0,
        sequenceGaps: 0,
        lostRecords: 0,
        samplingRates: [],
        liveTemplates: 1,
        rateLimited: { datagrams, sessions: 1 },
        decoderState: { bytes: 1000, evictions: 2 },
        padding: { datagrams: 0, octets: 0 },
      });
      return s;
    };
    const parts = [part(3), part(5)];
    // Merged twice, as two refreshes do with the same cached worker snapshots.
    mergeSnapshots(parts, 0);
    const merged = mergeSnapshots(parts, 0).exporters[0]!;
    expect([merged.datagrams, merged.records, merged.recordsByProtocol, merged.errorsByReason, merged.liveTemplates]).toEqual([
      8,
      16,
      { ipfix: 16 },
      { truncated: 2 },
      2,
    ]);
    expect([merged.rateLimited, merged.decoderState]).toEqual([
      { datagrams: 8, sessions: 2 },
      { bytes: 2000, evictions: 4 },
    ]);
    expect([parts[0]!.exporters[0]!.datagrams, parts[0]!.exporters[0]!.errorsByReason]).toEqual([3, { truncated: 1 }]);
  });
});
