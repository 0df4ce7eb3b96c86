/**
 * The marking check end to end: fireflies and IPFIX flow records of the same 5-tuples over
 * loopback UDP into the daemon (one thread and two decode workers); GET
 * /api/v1/fireflies/marking must count each record's outcome against what its transfer host
 * declared. Expected values are the records this test sends.
 */
import { describe, expect, it } from 'vitest';
import { fireflyStart } from '../builders/firefly.js';
import { f, templatesThenData } from '../builders/ipfix.js';
import { freePorts, freeUdpPort, getJson, sendUdp, startDaemon, waitFor } from '../support/daemon.js';

const V6 = [
  f('sourceIPv6Address', 16),
  f('destinationIPv6Address', 16),
  f('sourceTransportPort', 2),
  f('destinationTransportPort', 2),
  f('protocolIdentifier', 1),
  f('flowLabelIPv6', 4),
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
];
/** The same without the label (an exporter that cannot export it). */
const V6_NO_LABEL = V6.filter((x) => x.name !== 'flowLabelIPv6');
const V4 = [
  f('sourceIPv4Address', 4),
  f('destinationIPv4Address', 4),
  f('sourceTransportPort', 2),
  f('destinationTransportPort', 2),
  f('protocolIdentifier', 1),
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
];

/** (2, 3) with zero entropy bits: community 2 reversed into bits 3-11, activity 3 in 13-18. */
const LABEL_2_3 = 0x1000c;
/** (3, 3): CMS's pair. */
const LABEL_3_3 = 0x3000c;

interface Answer {
  flows: number;
  rows: {
    communityName: string;
    activity: number;
    srcSite: string;
    dstSite: string;
    records: Record<string, number>;
    bytes: Record<string, number>;
    agreeShare: number | null;
    carried: { community: number; activity: number; records: number }[];
  }[];
}

async function run(workers: number): Promise<Answer & { metrics: string[] }> {
  const ports = await freePorts();
  const fireflyPort = await freeUdpPort();
  const daemon = await startDaemon(ports, [
    `--firefly-port=${fireflyPort}`,
    `--workers=${workers}`,
    '--sites-prefixes={SITE-A: ["2001:db8:a::/48", "10.1.0.0/16"], SITE-B: ["2001:db8:b::/48"]}',
  ]);
  try {
    await sendUdp(fireflyPort, [
      fireflyStart('ipv6', '2001:db8:a::1', '2001:db8:b::1', 1094, 40000),
      fireflyStart('ipv6', '2001:db8:a::2', '2001:db8:b::2', 1094, 40001),
      fireflyStart('ipv6', '2001:db8:a::3', '2001:db8:b::3', 1094, 40002),
      fireflyStart('ipv4', '10.1.0.1', '10.2.0.1', 1094, 40003),
    ]);
    // `flows` counts what the record path (the workers) has been sent: later batches reach a
    // worker after that update.
    await waitFor(async () => (await getJson<Answer>(`${daemon.apiUrl}/api/v1/fireflies/marking`)).flows === 4);
    await sendUdp(
      ports.ipfix,
      templatesThenData([
        {
          fields: V6,
          records: [
            ['2001:db8:a::1', '2001:db8:b::1', 1094, 40000, 6, LABEL_2_3, 1000, 1], // agree
            ['2001:db8:b::1', '2001:db8:a::1', 40000, 1094, 6, LABEL_2_3, 100, 1], // agree, the other direction
            ['2001:db8:a::2', '2001:db8:b::2', 1094, 40001, 6, LABEL_3_3, 2000, 2], // mismatch: CMS's pair
            ['2001:db8:a::3', '2001:db8:b::3', 1094, 40002, 6, 0, 3000, 3], // unmarked
            ['2001:db8:a::9', '2001:db8:b::9', 1094, 40009, 6, LABEL_2_3, 9999, 9], // no firefly: not counted
            ['2001:db8:a::1', '2001:db8:b::1', 1094, 40000, 17, LABEL_2_3, 7777, 7], // UDP, not the TCP flow
          ],
        },
        { fields: V6_NO_LABEL, records: [['2001:db8:a::3', '2001:db8:b::3', 1094, 40002, 6, 500, 5]] }, // notExported
        { fields: V4, records: [['10.1.0.1', '10.2.0.1', 1094, 40003, 6, 4000, 4]] }, // ipv4
      ]),
    );
    let answer: Answer | undefined;
    await waitFor(async () => {
      answer = await getJson<Answer>(`${daemon.apiUrl}/api/v1/fireflies/marking`);
      return answer.rows.reduce((n, r) => n + Object.values(r.records).reduce((a, b) => a + b, 0), 0) === 6;
    });
    const metrics = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
    return { ...answer!, metrics: metrics.split('\n').filter((l) => l.startsWith('scitags_firefly_marking')) };
  } finally {
    expect(await daemon.stop('SIGTERM')).toBe(0);
  }
}

const zero = { agree: 0, mismatch: 0, unmarked: 0, notExported: 0, ipv4: 0 };

for (const workers of [1, 2]) {
  describe(`the marking check (${workers === 1 ? 'one thread' : 'two decode workers'})`, () => {
    it('counts each firefly flow record as agree, mismatch, unmarked, notExported or ipv4, per experiment and site pair', async () => {
      const a = await run(workers);
      expect(a.rows.map((r) => [r.communityName, r.activity, r.srcSite, r.dstSite, r.records, r.bytes, r.agreeShare, r.carried])).toEqual([
        [
          'atlas',
          3,
          'SITE-A',
          'SITE-B',
          { ...zero, agree: 2, mismatch: 1, unmarked: 1, notExported: 1 },
          { ...zero, agree: 1100, mismatch: 2000, unmarked: 3000, notExported: 500 },
          2 / 4,
          [{ community: 3, activity: 3, records: 1 }],
        ],
        ['atlas', 3, 'SITE-A', 'unknown', { ...zero, ipv4: 1 }, { ...zero, ipv4: 4000 }, null, []],
      ]);
      // The same sums per experiment in /metrics (HELP / TYPE lines, then the samples).
      expect(a.metrics.filter((l) => !l.startsWith('#') && / [1-9]/.test(l)).sort()).toEqual(
        [
          'scitags_firefly_marking_bytes_total{experiment="atlas",outcome="agree"} 1100',
          'scitags_firefly_marking_bytes_total{experiment="atlas",outcome="ipv4"} 4000',
          'scitags_firefly_marking_bytes_total{experiment="atlas",outcome="mismatch"} 2000',
          'scitags_firefly_marking_bytes_total{experiment="atlas",outcome="notExported"} 500',
          'scitags_firefly_marking_bytes_total{experiment="atlas",outcome="unmarked"} 3000',
          'scitags_firefly_marking_flows 4',
          'scitags_firefly_marking_records_total{experiment="atlas",outcome="agree"} 2',
          'scitags_firefly_marking_records_total{experiment="atlas",outcome="ipv4"} 1',
          'scitags_firefly_marking_records_total{experiment="atlas",outcome="mismatch"} 1',
          'scitags_firefly_marking_records_total{experiment="atlas",outcome="notExported"} 1',
          'scitags_firefly_marking_records_total{experiment="atlas",outcome="unmarked"} 1',
        ].sort(),
      );
    });
  });
}
