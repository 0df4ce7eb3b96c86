import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../support/expected.js';

const cli = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

function decodeLines(file: string): Record<string, unknown>[] {
  const out = execFileSync(process.execPath, [cli, 'decode', fixturePath(file)], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the decode command (built CLI)', () => {
  it('prints one JSON line per IPFIX record with fields by IANA name and the SciTags pair', () => {
    const lines = decodeLines('ipfix_pmacct_nfprobe_flowlabel.pcap');
    expect(lines).toHaveLength(43);
    expect(lines[0]).toMatchObject({
      frame: 1,
      protocol: 'ipfix',
      exporter: '127.0.0.1:45873',
      domain: 11,
      templateId: 2048,
      samplingRate: 1,
      samplingSource: 'unknown',
      class: 'pair',
      scitags: { community: 486, activity: 22, communityName: null, activityName: null, registered: false },
      fields: {
        octetDeltaCount: 8960,
        packetDeltaCount: 10,
        sourceIPv6Address: '2001:db8:20::12',
        destinationIPv6Address: '2001:db8:10::2',
        flowLabelIPv6: 892762,
        vlanId: 100,
        ingressInterface: 3,
        flowStartMilliseconds: '2024-06-01T12:00:00.444Z',
      },
    });
    // the address bytes are the datagram's, valid during decoding only: never printed
    for (const k of ['addrBytes', 'addrLen', 'srcAddrAt', 'dstAddrAt']) expect(lines[0]).not.toHaveProperty(k);
    // a registered pair carries the registry's names
    const atlas = lines.find(
      (l) => (l.scitags as { community?: number } | null)?.community === 2 && (l.scitags as { activity: number }).activity === 1,
    );
    expect(atlas?.scitags).toEqual({ community: 2, activity: 1, communityName: 'atlas', activityName: 'default', registered: true });
  });

  it('prints sFlow samples with their sFlow field names', () => {
    const lines = decodeLines('sflow_pmacct_sfprobe_rate1.pcap');
    expect(lines).toHaveLength(1448);
    expect(lines[0]).toMatchObject({
      protocol: 'sflow',
      domain: 7,
      samplingRate: 1,
      samplingSource: 'header',
      bytes: 82,
      flowLabel: 19497,
      fields: {
        agent: '127.0.0.1',
        sub_agent_id: 7,
        sample_pool: 1,
        header_protocol: 1,
        frame_length: 82,
        stripped: 4,
        header_length: 78,
        src_vlan: 100,
      },
    });
  });

  it('names PSAMP elements (IE 301, 315, 410) and counts the IP length of the frame', () => {
    const lines = decodeLines('ipfix_softflowd_psamp.pcap');
    expect(lines).toHaveLength(1448);
    expect(Object.keys(lines[0]!.fields as object)).toEqual([
      'selectionSequenceId',
      'observationTimeMicroseconds',
      'sectionExportedOctets',
      'dataLinkFrameSection',
    ]);
    expect(lines[0]).toMatchObject({ packets: 1, bytes: 60, flowLabel: 19497, vlan: 100 });
  });
});
