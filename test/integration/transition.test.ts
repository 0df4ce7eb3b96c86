/**
 * The IPv6 transition and site-pair views end to end: IPFIX over loopback UDP into the real
 * daemon (inline and with 2 decode workers), written to SQLite and to a real InfluxDB, read
 * back through GET /api/v1/transition and /api/v1/traffic of a second run on the same store.
 *
 * Every expected number is the sum of the records this test sends (built with the test-only
 * IPFIX builder, sampling rate 1, no timestamps so each record counts in its receive bucket).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { f, templatesThenData } from '../builders/ipfix.js';
import { freePorts, getJson, sendUdp, startDaemon, waitFor } from '../support/daemon.js';
import { influxdAvailable } from '../support/influxd.js';
import { useInfluxd } from '../support/use-influxd.js';

const V6 = [
  f('sourceIPv6Address', 16),
  f('destinationIPv6Address', 16),
  f('flowLabelIPv6', 4),
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
  f('ingressInterface', 4),
  f('egressInterface', 4),
];
const V4 = [
  f('sourceIPv4Address', 4),
  f('destinationIPv4Address', 4),
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
  f('ingressInterface', 4),
  f('egressInterface', 4),
];

/** Site A holds 2001:db8:a::/48 and 10.0.0.0/8; site B 2001:db8:b::/48. */
const SITES = '{A: ["2001:db8:a::/48", "10.0.0.0/8"], B: ["2001:db8:b::/48"]}';
/** (2,1) with zero entropy: ATLAS, registered in the shipped snapshot. */
const ATLAS_LABEL = 0x10004;

// [src, dst, label, bytes, packets, in, out]
const V6_RECORDS: [string, string, number, number, number, number, number][] = [
  ['2001:db8:a::1', '2001:db8:b::1', ATLAS_LABEL, 1000, 10, 1, 2], // marked, A -> B
  ['2001:db8:a::2', '64:ff9b::c000:221', 0, 4000, 40, 1, 2], // unmarked NAT64 (192.0.2.33), A -> unknown
  ['64:ff9b::c633:6401', '2001:db8:b::9', ATLAS_LABEL, 500, 5, 2, 1], // marked NAT64 answer, unknown -> B
  ['2001:db8:b::1', '2001:db8:a::1', 0, 2000, 20, 2, 1], // unmarked, B -> A
];
const V4_RECORDS: [string, string, number, number, number, number][] = [
  ['10.0.0.1', '192.0.2.1', 3000, 30, 1, 2], // A -> unknown
];

function datagrams(): Uint8Array[] {
  return templatesThenData([
    { fields: V6, records: V6_RECORDS },
    { fields: V4, records: V4_RECORDS },
  ]);
}

interface Sums {
  markedBytes: number;
  markedPackets: number;
  ipv4Bytes: number;
  ipv6Bytes: number;
  nat64Bytes: number;
  ipv4Packets: number;
  ipv6Packets: number;
  nat64Packets: number;
  ipv6Share: number | null;
}
interface TransitionAnswer {
  series: { group: Record<string, string | number | null>; totals: Sums }[];
  totals: Sums;
}
interface TrafficAnswer {
  series: { group: Record<string, string | number | null>; totals: { bytes: number; packets: number; records: number } }[];
  totals: { bytes: number; packets: number; records: number };
}

const pickSums = (s: Sums) => [s.ipv4Bytes, s.ipv6Bytes, s.nat64Bytes, s.ipv4Packets, s.ipv6Packets, s.nat64Packets];

/**
 * Runs the records through `rounds` daemons in turn on `store` (each restart continues the
 * buckets still open from what the store holds), then queries one more run on the same store.
 */
async function runAndQuery(store: string, extra: string[], rounds = 1) {
  const t0 = Date.now();
  const args = [`--store=${store}`, `--sites-prefixes=${SITES}`, ...extra];
  for (let round = 0; round < rounds; round++) {
    const ports = await freePorts();
    const daemon = await startDaemon(ports, args);
    try {
      await sendUdp(ports.ipfix, datagrams());
      await waitFor(async () => {
        const ex = await getJson<{ exporters: { records: number }[] }>(`${daemon.apiUrl}/api/v1/exporters`);
        return ex.exporters.reduce((n, e) => n + e.records, 0) === V6_RECORDS.length + V4_RECORDS.length;
      });
      // At least the five site-pair keys of these records (A>B marked, A>unknown NAT64 and IPv4,
      // unknown>B marked NAT64, B>A); a restarted run may also hold the seeded previous bucket's.
      const liveKeys = async () =>
        Number(/\nscitags_site_live_keys (\d+)\n/.exec(await (await fetch(`${daemon.apiUrl}/metrics`)).text())?.[1] ?? 0);
      await waitFor(async () => (await liveKeys()) >= 5);
    } finally {
      expect(await daemon.stop('SIGTERM')).toBe(0);
    }
  }
  const again = await startDaemon(await freePorts(), args);
  try {
    const from = Math.floor(t0 / 1000) - 3600;
    const range = `from=${from}&to=${from + 3 * 3600}&step=3h`;
    const get = <T>(path: string) => getJson<T>(`${again.apiUrl}${path}${path.includes('?') ? '&' : '?'}${range}`);
    return {
      total: await get<TransitionAnswer>('/api/v1/transition?groupBy='),
      byLink: await get<TransitionAnswer>('/api/v1/transition?groupBy=link'),
      bySite: await get<TransitionAnswer>('/api/v1/transition?groupBy=site'),
      byCommunity: await get<TransitionAnswer>('/api/v1/transition?groupBy=community'),
      pairs: await get<TrafficAnswer>('/api/v1/traffic?groupBy=srcSite,dstSite'),
      atlasPairs: await get<TrafficAnswer>('/api/v1/traffic?groupBy=srcSite,dstSite,community&community=atlas'),
      siteA: await get<TrafficAnswer>('/api/v1/traffic?groupBy=&site=A'),
      nat64: await get<TrafficAnswer>('/api/v1/traffic?groupBy=nat64,class'),
      bad: await fetch(`${again.apiUrl}/api/v1/traffic?groupBy=link,site&${range}`),
    };
  } finally {
    expect(await again.stop('SIGTERM')).toBe(0);
  }
}

function checkAnswers(a: Awaited<ReturnType<typeof runAndQuery>>, times = 1): void {
  const pick = (t: Sums) => pickSums(t).map((v) => v / times);
  const counts = (t: { bytes: number; packets: number; records: number }) => ({
    bytes: t.bytes / times,
    packets: t.packets / times,
    records: t.records / times,
  });
  // All traffic: IPv4 3000 B / 30 p; IPv6 1000 + 4000 + 500 + 2000 = 7500 B / 75 p, of which NAT64 4500 B / 45 p.
  expect(pick(a.total.totals)).toEqual([3000, 7500, 4500, 30, 75, 45]);
  expect(a.total.totals.ipv6Share).toBeCloseTo(7500 / 10500, 12);
  // Of the IPv6, the marked part: records 1 and 3 (1000 + 500 B, 10 + 5 p).
  expect([a.total.totals.markedBytes / times, a.total.totals.markedPackets / times]).toEqual([1500, 15]);

  // Per link (a record counts for its in and its out interface): every record here runs
  // between interfaces 1 and 2, so each link sees all of it.
  const links = Object.fromEntries(a.byLink.series.map((s) => [s.group.link, pick(s.totals)]));
  expect(links).toEqual({
    '127.0.0.1:1': [3000, 7500, 4500, 30, 75, 45],
    '127.0.0.1:2': [3000, 7500, 4500, 30, 75, 45],
  });
  expect(pick(a.byLink.totals)).toEqual([3000, 7500, 4500, 30, 75, 45]);

  // Per site (traffic to or from it): A = records 1, 2, 4 and the IPv4 one; B = 1, 3, 4;
  // unknown = 2, 3 and the IPv4 one's destination.
  const sites = Object.fromEntries(a.bySite.series.map((s) => [s.group.site, pick(s.totals)]));
  expect(sites).toEqual({
    A: [3000, 7000, 4000, 30, 70, 40],
    B: [0, 3500, 500, 0, 35, 5],
    unknown: [3000, 4500, 4500, 30, 45, 45],
  });
  expect(pick(a.bySite.totals)).toEqual([3000, 7500, 4500, 30, 75, 45]);

  // Per experiment: ATLAS is IPv6 only (1500 B, 500 of it NAT64); the rest has no experiment.
  const communities = Object.fromEntries(
    a.byCommunity.series.map((s) => [`${s.group.community}/${s.group.communityName}`, pick(s.totals)]),
  );
  expect(communities).toEqual({
    '2/atlas': [0, 1500, 500, 0, 15, 5],
    'null/null': [3000, 6000, 4000, 30, 60, 40],
  });

  const pairs = Object.fromEntries(a.pairs.series.map((s) => [`${s.group.srcSite}>${s.group.dstSite}`, counts(s.totals)]));
  expect(pairs).toEqual({
    'A>B': { bytes: 1000, packets: 10, records: 1 },
    'A>unknown': { bytes: 7000, packets: 70, records: 2 },
    'unknown>B': { bytes: 500, packets: 5, records: 1 },
    'B>A': { bytes: 2000, packets: 20, records: 1 },
  });
  expect(a.atlasPairs.series.map((s) => [s.group.srcSite, s.group.dstSite, s.group.communityName, s.totals.bytes / times])).toEqual([
    ['A', 'B', 'atlas', 1000],
    ['unknown', 'B', 'atlas', 500],
  ]);
  expect(counts(a.siteA.totals)).toEqual({ bytes: 10000, packets: 100, records: 4 });
  const nat64 = Object.fromEntries(a.nat64.series.map((s) => [`${s.group.class}/${s.group.nat64}`, s.totals.bytes / times]));
  expect(nat64).toEqual({
    'ipv6_unmarked/true': 4000,
    'scitags/true': 500,
    'scitags/false': 1000,
    'ipv6_unmarked/false': 2000,
    'ipv4/false': 3000,
  });
  expect(a.bad.status).toBe(400);
}

describe('IPv6 transition and site-pair views (IPFIX over loopback)', () => {
  it('SQLite, one thread: exact IPv4 / IPv6 / NAT64 sums per link, site and experiment, and site pairs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-transition-'));
    checkAnswers(await runAndQuery(`sqlite:${join(dir, 's.sqlite')}`, ['--workers=1']));
  });

  it('SQLite, a restart inside the bucket: the second run continues the stored link and site-pair rows (every sum twice)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-transition-'));
    checkAnswers(await runAndQuery(`sqlite:${join(dir, 's.sqlite')}`, ['--workers=1'], 2), 2);
  });

  it('SQLite, two decode workers: the same answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-transition-'));
    checkAnswers(await runAndQuery(`sqlite:${join(dir, 's.sqlite')}`, ['--workers=2']));
  });
});

describe.skipIf(!influxdAvailable())('IPv6 transition and site-pair views on a real InfluxDB', () => {
  const influxd = useInfluxd();

  it('the same answers from scitags_traffic / link_traffic (nat64 tag) and scitags_site_traffic', async () => {
    checkAnswers(await runAndQuery(`influx://127.0.0.1:${influxd().port}/scitags`, ['--workers=1'], 2), 2);
  });
});
