import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { type Daemon, type DaemonPorts, freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { addCounts, type ExpectedCounts, expectedTotals, fixturePath, loadTruth } from '../support/expected.js';
import { influxdAvailable } from '../support/influxd.js';
import { useInfluxd } from '../support/use-influxd.js';

/**
 * The scale-out shape (docs/scale-out.md, "Beyond one machine"): several collector instances,
 * each owning a disjoint set of exporters, write into ONE InfluxDB database. Every series
 * carries the exporter as a tag, so the instances never write each other's points and the
 * totals compose: what the two instances write together equals what one instance fed every
 * datagram writes, and both equal the truth files.
 *
 * Four exporters, each a capture replayed from its own loopback source address (the exporter
 * identity is the UDP source address; Linux routes all of 127/8 to lo):
 *   instance A owns 127.0.0.2 (IPFIX, pmacct) and 127.0.0.3 (NetFlow v9, pmacct, sampled 1:4),
 *   instance B owns 127.0.0.4 (sFlow, pmacct) and 127.0.0.5 (IPFIX, pmacct, sampled 1:4).
 * Every datagram goes from the same socket to its owner and to instance S (single), which
 * writes into a second database on the same influxd. The sampled captures carry their rate in
 * options records (IPFIX samplerId join, v9 options flowset) sent once, in the first datagram,
 * from the same socket as the data: an instance that did not get them would count 1/4.
 *
 * Ownership is shown by the order of writes: aggregation.graceSeconds is an hour, so no bucket
 * is written before SIGTERM (which writes every open bucket). Stop A: the shared database holds
 * exactly A's exporters with their whole totals. Stop B: A's points are unchanged, point for
 * point, and B's exporters appear with theirs.
 */

interface Exporter {
  address: string;
  capture: string;
  /** Its truth file: corpus `.truth.json` or a project capture's `.expected.json` (same shape). */
  truthFile: string;
  port: keyof DaemonPorts;
  instance: 'A' | 'B';
  /**
   * The exporter's grand total, written out so the numbers are visible; the test also checks
   * that the truth file gives the same (sum of expected_other over ipv4, ipv6_label_zero /
   * ipv6_label_absent and ipv6_label_nonzero: records, packets_scaled, bytes_scaled; the
   * non-zero labels are the pairs of expected_by_pair_all_nonzero_labels).
   */
  total: ExpectedCounts;
  /** `datagrams` of the truth file: what collector_stats must count for this exporter. */
  datagrams: number;
}

const EXPORTERS: Exporter[] = [
  {
    // ipfix_pmacct_nfprobe_flowlabel.truth.json expected_other: ipv6_label_nonzero 31 / 1181 / 868845,
    // ipv6_label_zero 6 / 103 / 44382, ipv4 6 / 164 / 115431 (records / packets / bytes, rate 1).
    address: '127.0.0.2',
    capture: 'ipfix_pmacct_nfprobe_flowlabel',
    truthFile: 'ipfix_pmacct_nfprobe_flowlabel.truth.json',
    port: 'ipfix',
    instance: 'A',
    total: { records: 43, packets: 1448, bytes: 1_028_658 },
    datagrams: 9,
  },
  {
    // netflow9_pmacct_sampled.expected.json: expected_totals packets_scaled 1484, bytes_scaled
    // 1049044; expected_other records ipv4 5 + ipv6_label_zero 6 + ipv6_label_nonzero 31 = 42.
    address: '127.0.0.3',
    capture: 'netflow9_pmacct_sampled',
    truthFile: 'netflow9_pmacct_sampled.expected.json',
    port: 'netflow',
    instance: 'A',
    total: { records: 42, packets: 1484, bytes: 1_049_044 },
    datagrams: 9,
  },
  {
    // sflow_pmacct_sfprobe_rate1.truth.json expected_other (bytes = frame_length with FCS):
    // ipv6_label_nonzero 1181 / 1181 / 891343, ipv6_label_zero 103 / 103 / 46352, ipv4 164 / 164 / 118535.
    address: '127.0.0.4',
    capture: 'sflow_pmacct_sfprobe_rate1',
    truthFile: 'sflow_pmacct_sfprobe_rate1.truth.json',
    port: 'sflow',
    instance: 'B',
    total: { records: 1448, packets: 1448, bytes: 1_056_230 },
    datagrams: 235,
  },
  {
    // ipfix_pmacct_sampled.expected.json: expected_totals packets_scaled 1448, bytes_scaled
    // 1052468; expected_other records ipv4 6 + ipv6_label_zero 6 + ipv6_label_nonzero 30 = 42.
    address: '127.0.0.5',
    capture: 'ipfix_pmacct_sampled',
    truthFile: 'ipfix_pmacct_sampled.expected.json',
    port: 'ipfix',
    instance: 'B',
    total: { records: 42, packets: 1448, bytes: 1_052_468 },
    datagrams: 9,
  },
];
/** All four: records 43 + 42 + 1448 + 42, packets 1448 + 1484 + 1448 + 1448, bytes summed. */
const GRAND_TOTAL: ExpectedCounts = { records: 1575, packets: 5828, bytes: 4_186_400 };

const SHARED_DB = 'scitags';
const SINGLE_DB = 'scitags_single';

// ---------------------------------------------------------------------------------------
// The expectation, from the truth files only
// ---------------------------------------------------------------------------------------

type Totals = Map<string, ExpectedCounts>;

interface Expected {
  /** link_traffic by exporter and class. */
  byExporterClass: Totals;
  /** scitags_traffic by exporter and community_id/activity_id (unregistered pairs folded). */
  byExporterPair: Totals;
  /** scitags_traffic by community_id/activity_id over all exporters. */
  byPair: Totals;
  /** link_traffic by class over all exporters. */
  byClass: Totals;
  /** link_traffic by exporter, all classes. */
  byExporter: Totals;
}

function buildExpected(): Expected {
  const registry = loadSnapshot(0);
  const e: Expected = {
    byExporterClass: new Map(),
    byExporterPair: new Map(),
    byPair: new Map(),
    byClass: new Map(),
    byExporter: new Map(),
  };
  const add = (m: Totals, key: string, c: ExpectedCounts): void => {
    if (c.records === 0 && c.packets === 0 && c.bytes === 0) return; // no point is written for an empty class
    m.set(key, addCounts(m.get(key), c));
  };
  for (const x of EXPORTERS) {
    const t = expectedTotals(loadTruth(fixturePath(x.truthFile)));
    for (const [pair, counts] of t.pairs) {
      const [community, activity] = pair.split('/').map(Number) as [number, number];
      // Unregistered pairs are folded into one `unregistered` series (aggregation.keepUnregistered empty).
      const key = registry.isRegistered(community, activity) ? pair : 'unregistered/unregistered';
      add(e.byExporterPair, `${x.address} ${key}`, counts);
      add(e.byPair, key, counts);
      add(e.byExporterClass, `${x.address} scitags`, counts);
      add(e.byClass, 'scitags', counts);
      add(e.byExporter, x.address, counts);
    }
    for (const [cls, counts] of [
      ['ipv6_unmarked', t.ipv6Unmarked],
      ['ipv4', t.ipv4],
    ] as const) {
      add(e.byExporterClass, `${x.address} ${cls}`, counts);
      add(e.byClass, cls, counts);
      add(e.byExporter, x.address, counts);
    }
  }
  return e;
}

// ---------------------------------------------------------------------------------------
// What InfluxDB holds, read with plain InfluxQL
// ---------------------------------------------------------------------------------------

interface SumRow {
  bytes: number;
  packets: number;
  records: number;
  [tag: string]: unknown;
}

const SUMS = 'sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records"';

/** Sums of one measurement grouped by `tags`, keyed as buildExpected keys them. */
async function sums(influx: InfluxDB, measurement: string, tags: string[], key: (r: SumRow) => string): Promise<Totals> {
  const rows = await influx.query<SumRow>(`SELECT ${SUMS} FROM "${measurement}" GROUP BY ${tags.map((t) => `"${t}"`).join(', ')}`);
  return new Map(rows.map((r) => [key(r), { records: r.records, packets: r.packets, bytes: r.bytes }]));
}

async function readTotals(influx: InfluxDB): Promise<Expected> {
  const pair = (r: SumRow) => `${String(r.community_id)}/${String(r.activity_id)}`;
  return {
    byExporterClass: await sums(influx, 'link_traffic', ['exporter', 'class'], (r) => `${String(r.exporter)} ${String(r.class)}`),
    byExporterPair: await sums(
      influx,
      'scitags_traffic',
      ['exporter', 'community_id', 'activity_id'],
      (r) => `${String(r.exporter)} ${pair(r)}`,
    ),
    byPair: await sums(influx, 'scitags_traffic', ['community_id', 'activity_id'], pair),
    byClass: await sums(influx, 'link_traffic', ['class'], (r) => String(r.class)),
    byExporter: await sums(influx, 'link_traffic', ['exporter'], (r) => String(r.exporter)),
  };
}

/** Every raw point of the given exporters in both traffic measurements (time, tags, fields). */
async function rawPoints(influx: InfluxDB, exporters: string[]): Promise<unknown[]> {
  const re = exporters.map((a) => a.replaceAll('.', '\\.')).join('|');
  const out: unknown[] = [];
  for (const m of ['scitags_traffic', 'link_traffic']) {
    const rows = await influx.query<Record<string, unknown> & { time: Date }>(`SELECT * FROM "${m}" WHERE "exporter" =~ /^(${re})$/`);
    for (const r of rows) out.push({ measurement: m, ...r, time: r.time.getTime() });
  }
  return out;
}

const addresses = (owner?: 'A' | 'B'): string[] =>
  EXPORTERS.filter((x) => owner === undefined || x.instance === owner).map((x) => x.address);

// ---------------------------------------------------------------------------------------
// Sending: one socket per exporter and original transport session, bound to its address
// ---------------------------------------------------------------------------------------

async function bindTo(address: string): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, address, () => resolve());
  });
  return s;
}

/** Sends each capture's datagrams, in capture order, to its owner instance and to the single instance. */
async function feed(owners: Record<'A' | 'B', DaemonPorts>, single: DaemonPorts): Promise<void> {
  for (const x of EXPORTERS) {
    const cap = readCaptureFile(fixturePath(`${x.capture}.pcap`));
    expect(cap.datagrams.length, `${x.capture}: datagrams in the capture`).toBe(x.datagrams);
    const sockets = new Map<string, Socket>();
    try {
      for (const [i, d] of cap.datagrams.entries()) {
        const session = `${d.srcAddr}|${d.srcPort}`;
        let s = sockets.get(session);
        if (!s) sockets.set(session, (s = await bindTo(x.address)));
        for (const port of [owners[x.instance][x.port], single[x.port]]) {
          await new Promise<void>((resolve, reject) => s.send(d.payload, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
        }
        // A little pacing (about 5000 datagrams/s) so no socket buffer overflows on a busy machine.
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      await Promise.all([...sockets.values()].map((s) => new Promise<void>((r) => s.close(() => r()))));
    }
  }
}

interface ExporterInfo {
  address: string;
  datagrams: number;
  records: number;
}

async function exportersOf(d: Daemon): Promise<ExporterInfo[]> {
  const ex = await getJson<{ exporters: ExporterInfo[] }>(`${d.apiUrl}/api/v1/exporters`);
  return ex.exporters.sort((a, b) => a.address.localeCompare(b.address));
}

// ---------------------------------------------------------------------------------------

describe.skipIf(!influxdAvailable())('scale-out: two instances owning disjoint exporters share one InfluxDB', () => {
  const influxd = useInfluxd();

  it('the two instances write disjoint series whose totals equal one instance fed everything, and the truth', async () => {
    const expected = buildExpected();
    // The literal totals above are what the truth files say.
    for (const x of EXPORTERS) expect(expected.byExporter.get(x.address), x.capture).toEqual(x.total);
    expect([...expected.byExporter.values()].reduce((a, c) => addCounts(a, c))).toEqual(GRAND_TOTAL);

    // No bucket is written before SIGTERM, whatever the wall clock does during the test.
    const dir = mkdtempSync(join(tmpdir(), 'scitags-scale-out-'));
    const config = join(dir, 'collector.yaml');
    writeFileSync(config, 'aggregation:\n  graceSeconds: 3600\n');
    const store = (database: string) => `--store=influx://127.0.0.1:${influxd().port}/${database}`;
    const ports = { A: await freePorts(), B: await freePorts(), S: await freePorts() };
    // A and B start together: both provision the shared database (create it, its retention
    // policies and continuous queries) at the same time. S starts afterwards: provisioning looks
    // for existing continuous queries by name with SHOW CONTINUOUS QUERIES, which lists every
    // database of the server, so a second database on one influxd gets none of its own (the
    // totals here read the raw policy and do not depend on roll-ups).
    const [a, b] = await Promise.all([
      startDaemon(ports.A, [`--config=${config}`, store(SHARED_DB)]),
      startDaemon(ports.B, [`--config=${config}`, store(SHARED_DB)]),
    ]);
    const s = await startDaemon(ports.S, [`--config=${config}`, store(SINGLE_DB)]);
    const running = [a, b, s];
    try {
      await feed({ A: ports.A, B: ports.B }, ports.S);

      // Each instance decoded exactly its own exporters, every datagram and record
      // (records per exporter: the truth files' data_records / flow_samples = total.records).
      const want = (owner?: 'A' | 'B') =>
        EXPORTERS.filter((x) => owner === undefined || x.instance === owner)
          .map((x) => ({ address: x.address, datagrams: x.datagrams, records: x.total.records }))
          .sort((p, q) => p.address.localeCompare(q.address));
      const seen = async (d: Daemon) => (await exportersOf(d)).map(({ address, datagrams, records }) => ({ address, datagrams, records }));
      for (const [d, owner] of [
        [a, 'A'],
        [b, 'B'],
        [s, undefined],
      ] as const) {
        await waitFor(async () => JSON.stringify(await seen(d)) === JSON.stringify(want(owner)), 15_000).catch(() => {});
        expect(await seen(d), `instance ${owner ?? 'S'}`).toEqual(want(owner));
      }

      const shared = new InfluxDB({ host: '127.0.0.1', port: influxd().port, database: SHARED_DB });
      const single = new InfluxDB({ host: '127.0.0.1', port: influxd().port, database: SINGLE_DB });
      // Concurrent provisioning left one set of continuous queries on the shared database, not
      // an error or a duplicate. (SHOW CONTINUOUS QUERIES lists every database: pick ours.)
      const cqs =
        (await shared.query<{ name: string }>('SHOW CONTINUOUS QUERIES'))
          .groups()
          .find((g) => g.name === SHARED_DB)
          ?.rows.map((r) => r.name) ?? [];
      expect(cqs.sort()).toEqual(['cq_firefly_1h', 'cq_link_1h', 'cq_scitags_1h']);
      // Nothing written yet (graceSeconds: 3600).
      expect((await readTotals(shared)).byExporter).toEqual(new Map());

      // Stop A: the shared database holds A's exporters, complete, and nothing of B's.
      expect(await a.stop()).toBe(0);
      running.splice(running.indexOf(a), 1);
      const afterA = await readTotals(shared);
      expect(afterA.byExporter).toEqual(new Map(EXPORTERS.filter((x) => x.instance === 'A').map((x) => [x.address, x.total])));
      const pointsOfA = await rawPoints(shared, addresses('A'));
      expect(pointsOfA.length).toBeGreaterThan(0);

      // Stop B: A's points are untouched, B's exporters appear with their totals.
      expect(await b.stop()).toBe(0);
      running.splice(running.indexOf(b), 1);
      expect(await rawPoints(shared, addresses('A'))).toEqual(pointsOfA);
      expect(await s.stop()).toBe(0);
      running.splice(running.indexOf(s), 1);

      // The composed totals equal the single instance's, exactly, and both equal the truth.
      const together = await readTotals(shared);
      const alone = await readTotals(single);
      expect(together).toEqual(alone);
      expect(together).toEqual(expected);
      expect(together.byExporter).toEqual(new Map(EXPORTERS.map((x) => [x.address, x.total])));
      // Marked traffic in scitags_traffic equals the scitags class of link_traffic, per exporter.
      for (const x of EXPORTERS) {
        const marked = [...together.byExporterPair]
          .filter(([k]) => k.startsWith(`${x.address} `))
          .reduce<ExpectedCounts | undefined>((acc, [, c]) => addCounts(acc, c), undefined);
        expect(marked, x.address).toEqual(together.byExporterClass.get(`${x.address} scitags`));
      }

      // collector_stats per exporter: each exporter's counters come from its owner alone and
      // hold every datagram and record (the last point is written at shutdown).
      const counters = async (influx: InfluxDB) =>
        new Map(
          (
            await influx.query<{ exporter: string; datagrams: number; records: number }>(
              `SELECT last("datagrams") AS "datagrams", last("records") AS "records" FROM "collector_stats" WHERE "exporter" != 'all' GROUP BY "exporter"`,
            )
          ).map((r) => [r.exporter, { datagrams: r.datagrams, records: r.records }]),
        );
      const wantCounters = new Map(EXPORTERS.map((x) => [x.address, { datagrams: x.datagrams, records: x.total.records }]));
      expect(await counters(shared)).toEqual(wantCounters);
      expect(await counters(single)).toEqual(wantCounters);
    } finally {
      for (const d of running) await d.stop();
    }

    // Any instance's REST API over the shared database answers for every instance's exporters:
    // /api/v1/traffic reads InfluxDB, not the instance's own state. (This instance also reads the
    // still-open buckets of every exporter back at start and writes them again at shutdown,
    // unchanged here since nothing was added: see docs/scale-out.md, "Not supported".)
    const reader = await startDaemon(await freePorts(), [`--config=${config}`, store(SHARED_DB)]);
    try {
      const from = Math.floor(Date.now() / 1000) - 3600;
      const traffic = await getJson<{ series: { group: Record<string, unknown>; totals: { bytes: number } }[] }>(
        `${reader.apiUrl}/api/v1/traffic?from=${from}&to=now&groupBy=exporter&step=1h`,
      );
      expect(new Map(traffic.series.map((x) => [String(x.group.exporter), x.totals.bytes]))).toEqual(
        new Map(EXPORTERS.map((x) => [x.address, x.total.bytes])),
      );
      expect(await getJson<{ exporters: unknown[] }>(`${reader.apiUrl}/api/v1/exporters`)).toMatchObject({ exporters: [] });
    } finally {
      expect(await reader.stop()).toBe(0);
    }
    const shared = new InfluxDB({ host: '127.0.0.1', port: influxd().port, database: SHARED_DB });
    expect(await readTotals(shared)).toEqual(expected);
  });
});
