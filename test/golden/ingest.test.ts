import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ingestFiles, type IngestDocument } from '../../src/commands/ingest.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { expectedTotals, fixturePath, fixturesWithTruth, loadTruth } from '../support/expected.js';

const registry = loadSnapshot(0);

function pairsOf(doc: IngestDocument): Map<string, { records: number; packets: number; bytes: number }> {
  return new Map(doc.pairs.map((p) => [`${p.community}/${p.activity}`, { records: p.records, packets: p.packets, bytes: p.bytes }]));
}

const fixtures = fixturesWithTruth();

describe('ingest totals equal the truth of every capture fixture', () => {
  it('has the corpus captures', () => {
    expect(fixtures.map((f) => f.name)).toEqual(
      expect.arrayContaining(['ipfix_pmacct_nfprobe_flowlabel', 'ipfix_softflowd_vlan', 'sflow_pmacct_sfprobe_rate1']),
    );
  });

  for (const f of fixtures) {
    it(f.name, async () => {
      const diagnostics: string[] = [];
      const doc = await ingestFiles([f.pcap], { registry, onDiagnostic: (l) => diagnostics.push(l) });
      const want = expectedTotals(loadTruth(f.truthFile));
      expect(pairsOf(doc)).toEqual(want.pairs);
      expect(doc.unmarked.ipv6).toEqual(want.ipv6Unmarked);
      expect(doc.unmarked.ipv4).toEqual(want.ipv4);
      expect(doc.stats.decodeErrors).toBe(0);
      expect(doc.stats.unknownIpVersion).toEqual({ records: 0, packets: 0, bytes: 0 });
      expect(diagnostics).toEqual([]);
    });
  }
});

describe('the ingest command (built CLI)', () => {
  const cli = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

  it('prints the DESIGN.md document for the pmacct IPFIX capture, with registry names', () => {
    const out = execFileSync(process.execPath, [cli, 'ingest', fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap')], { encoding: 'utf8' });
    const doc = JSON.parse(out) as IngestDocument;
    expect(doc.pairs[0]).toEqual({
      community: 2,
      activity: 1,
      communityName: 'atlas',
      activityName: 'default',
      registered: true,
      records: 3,
      packets: 146,
      bytes: 115996,
    });
    expect(doc.pairs.find((p) => p.community === 200 && p.activity === 10)).toEqual({
      community: 200,
      activity: 10,
      communityName: null,
      activityName: null,
      registered: false,
      records: 2,
      packets: 61,
      bytes: 44644,
    });
    expect(doc.unmarked).toEqual({ ipv6: { records: 6, packets: 103, bytes: 44382 }, ipv4: { records: 6, packets: 164, bytes: 115431 } });
    expect(doc.stats).toMatchObject({ datagrams: 9, records: 43, decodeErrors: 0, templateMisses: 0 });
  });

  it('sums several captures of different protocols in one run', () => {
    const out = execFileSync(
      process.execPath,
      [cli, 'ingest', fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap'), fixturePath('sflow_pmacct_sfprobe_rate1.pcap')],
      { encoding: 'utf8' },
    );
    const doc = JSON.parse(out) as IngestDocument;
    // 2/1: 146 packets in each capture; IPFIX counts IP bytes, sFlow frame bytes (+18 per packet incl. FCS).
    const p21 = doc.pairs.find((p) => p.community === 2 && p.activity === 1)!;
    expect(p21.packets).toBe(292);
    expect(doc.stats.records).toBe(43 + 1448);
  });

  it('names the file and the reason when a capture is unreadable, and exits 1', () => {
    let err: { status: number; stderr: string } | undefined;
    try {
      execFileSync(process.execPath, [cli, 'ingest', fixturePath('ipfix_pmacct_nfprobe_flowlabel.truth.json')], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (e) {
      err = e as { status: number; stderr: string };
    }
    expect(err?.status).toBe(1);
    expect(err?.stderr).toMatch(/ipfix_pmacct_nfprobe_flowlabel\.truth\.json: pcap-bad-magic/);
  });
});
