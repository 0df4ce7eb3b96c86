import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { createFlowDecoderState, decodeFlowDatagram, restoreFlowState, snapshotFlowState } from '../../decoders/ipfix/index.js';
import { f, ipfixDataSet, ipfixMessage, ipfixOptionsTemplateSet, ipfixTemplateSet, ipfixWithdrawalSet, VARLEN } from '../builders/ipfix.js';
import { fixturePath } from '../support/expected.js';

const ctx = (port: number, ms: number) => ({ exporterAddr: '192.0.2.1', exporterPort: port, receivedMs: ms });

describe('saving and restoring the IPFIX / NetFlow decoder state', () => {
  it('a restored state decodes data whose templates and sampling options came before the restart', () => {
    for (const file of ['ipfix_pmacct_sampled.pcap', 'netflow9_pmacct_sampled.pcap', 'ipfix_softflowd_vlan.pcap']) {
      const dgrams = readCaptureFile(fixturePath(file)).datagrams;
      // Uninterrupted run.
      const whole = createFlowDecoderState();
      const want = dgrams.flatMap(
        (d) => decodeFlowDatagram(d.payload, { exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs }, whole).records,
      );
      // First datagram (templates and options), then a restart through JSON, then the rest.
      const before = createFlowDecoderState();
      const got = decodeFlowDatagram(
        dgrams[0]!.payload,
        { exporterAddr: dgrams[0]!.srcAddr, exporterPort: dgrams[0]!.srcPort, receivedMs: dgrams[0]!.timeMs },
        before,
      ).records;
      const after = restoreFlowState(JSON.parse(JSON.stringify(snapshotFlowState(before, 0))) as unknown);
      for (const d of dgrams.slice(1)) {
        const r = decodeFlowDatagram(d.payload, { exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs }, after);
        expect(r.stats.templateMisses, file).toBe(0);
        got.push(...r.records);
      }
      expect(got, file).toEqual(want);
    }
  });

  it('keeps withdrawn ids, interface names, sequence state and held data sets', () => {
    const fields = [f('octetDeltaCount', 4), f('packetDeltaCount', 4)];
    const opt = [f('ingressInterface', 4), f('interfaceName', VARLEN)];
    const st = createFlowDecoderState();
    decodeFlowDatagram(
      ipfixMessage({ seq: 0 }, [
        ipfixTemplateSet([{ id: 300, fields }]),
        ipfixOptionsTemplateSet([{ id: 400, fields: opt, scopeCount: 1 }]),
        ipfixDataSet(400, opt, [[7, 'to-cern']]),
        ipfixDataSet(301, fields, [[5, 1]]), // template 301 not known yet: held
      ]),
      ctx(4739, 1000),
      st,
    );
    decodeFlowDatagram(ipfixMessage({ seq: 1 }, [ipfixWithdrawalSet([300])]), ctx(4739, 1001), st);
    const back = restoreFlowState(JSON.parse(JSON.stringify(snapshotFlowState(st, 2000))) as unknown);
    expect(snapshotFlowState(back, 2000)).toEqual(snapshotFlowState(st, 2000));
    const r = decodeFlowDatagram(
      ipfixMessage({ seq: 1 }, [ipfixDataSet(300, fields, [[1, 1]]), ipfixTemplateSet([{ id: 301, fields }])]),
      ctx(4739, 1500),
      back,
    );
    expect(r.errors.map((e) => e.code)).toEqual(['template-withdrawn']);
    expect(r.stats.replayed).toBe(1);
    expect(r.records.map((x) => x.bytes)).toEqual([5]);
    expect(r.stats.sequenceGaps).toBe(0);
  });

  it('refuses documents it did not write, and templates that would loop', () => {
    expect(() => restoreFlowState({ version: 2 })).toThrow(/decoder state is not valid at version/);
    expect(() => restoreFlowState('garbage')).toThrow(/decoder state is not valid/);
    const doc = snapshotFlowState(createFlowDecoderState(), 0);
    doc.sessions.push({
      address: '192.0.2.1',
      port: 1,
      lastSeenMs: 0,
      pending: [],
      domains: [
        {
          domain: 0,
          withdrawn: [],
          sequence: { expected: -1, lost: 0, late: 0, resets: 0, gaps: 0 },
          sampling: { domainRate: 0, samplers: [], selectors: [], interfaces: [], interfaceNames: [], systemInitMs: -1 },
          templates: [{ id: 256, kind: 'data', protocol: 'ipfix', fields: [{ id: 1, pen: 0, length: 0, scope: false }], receivedMs: 0 }],
        },
      ],
    });
    expect(() => restoreFlowState(doc)).toThrow(/empty records/);
  });
});
