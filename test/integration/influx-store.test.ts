import { silentLogger } from '../../src/log.js';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { replayDatagrams } from '../../collectors/replay.js';
import { influxStoreSchema } from '../../src/config/schema.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { createInfluxStore } from '../../src/store/influx/store.js';
import type { FireflyRow, TrafficRow } from '../../src/store/types.js';
import { createSocket } from 'node:dgram';
import { f, ipfixDataSet, ipfixMessage, ipfixOptionsTemplateSet, ipfixTemplateSet, VARLEN } from '../builders/ipfix.js';
import { type Daemon, freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { addCounts, CORPUS_CAPTURES, type ExpectedCounts, expectedTotals, fixturePath, loadTruth } from '../support/expected.js';
import { influxdAvailable, startInfluxd } from '../support/influxd.js';
import { useInfluxd } from '../support/use-influxd.js';
import { fireflyRow } from '../builders/rows.js';

describe.skipIf(!influxdAvailable())('InfluxDB store against a real influxd', () => {
  const influxd = useInfluxd();

  it('corpus replayed through serve: InfluxDB totals equal the truth, and the REST API answers as over SQLite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-influx-'));
    const influxPorts = await freePorts();
    const sqlitePorts = await freePorts();
    const t0 = Date.now();
    const daemons: Daemon[] = [
      await startDaemon(influxPorts, [`--store=influx://127.0.0.1:${influxd().port}/scitags`]),
      await startDaemon(sqlitePorts, [`--store=sqlite:${join(dir, 'scitags.sqlite')}`]),
    ];
    let datagrams = 0;
    for (const c of CORPUS_CAPTURES) {
      const cap = readCaptureFile(fixturePath(`${c.name}.pcap`));
      datagrams += cap.datagrams.length;
      for (const ports of [influxPorts, sqlitePorts]) {
        await replayDatagrams(cap.datagrams, { host: '127.0.0.1', port: ports[c.port], speed: 0, rate: 5000, onlyDstPort: 0 });
      }
    }
    for (const d of daemons) {
      await waitFor(async () => {
        const ex = await getJson<{ exporters: { datagrams: number }[] }>(`${d.apiUrl}/api/v1/exporters`);
        return ex.exporters.reduce((n, e) => n + e.datagrams, 0) === datagrams;
      });
    }
    for (const d of daemons) expect(await d.stop('SIGTERM')).toBe(0);

    // What InfluxDB holds, read with plain InfluxQL.
    const influx = new InfluxDB({ host: '127.0.0.1', port: influxd().port, database: 'scitags' });
    const pairs = await influx.query<{ community_id: string; activity_id: string; bytes: number; packets: number; records: number }>(
      'SELECT sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records" FROM "scitags_traffic" GROUP BY "community_id", "activity_id"',
    );
    const classes = await influx.query<{ class: string; bytes: number; packets: number; records: number }>(
      'SELECT sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records" FROM "link_traffic" GROUP BY "class"',
    );
    const registry = loadSnapshot(0);
    const wantPairs = new Map<string, ExpectedCounts>();
    const wantClasses = new Map<string, ExpectedCounts>();
    for (const c of CORPUS_CAPTURES) {
      const t = expectedTotals(loadTruth(fixturePath(`${c.name}.truth.json`)));
      for (const [pair, counts] of t.pairs) {
        const [community, activity] = pair.split('/').map(Number) as [number, number];
        const key = registry.isRegistered(community, activity) ? pair : 'unregistered/unregistered';
        wantPairs.set(key, addCounts(wantPairs.get(key), counts));
        wantClasses.set('scitags', addCounts(wantClasses.get('scitags'), counts));
      }
      wantClasses.set('ipv6_unmarked', addCounts(wantClasses.get('ipv6_unmarked'), t.ipv6Unmarked));
      wantClasses.set('ipv4', addCounts(wantClasses.get('ipv4'), t.ipv4));
    }
    expect(
      new Map(pairs.map((r) => [`${r.community_id}/${r.activity_id}`, { records: r.records, packets: r.packets, bytes: r.bytes }])),
    ).toEqual(wantPairs);
    expect(new Map(classes.map((r) => [r.class, { records: r.records, packets: r.packets, bytes: r.bytes }]))).toEqual(wantClasses);
    const stats = await influx.query<{ datagrams: number; records: number }>(
      `SELECT last("datagrams") AS "datagrams", last("records") AS "records" FROM "collector_stats" WHERE "exporter" = 'all'`,
    );
    expect([stats[0]?.datagrams, stats[0]?.records]).toEqual([datagrams, 43 + 43 + 1448]);

    // The REST API over each store gives the same answers.
    const overInflux = await startDaemon(await freePorts(), [`--store=influx://127.0.0.1:${influxd().port}/scitags`]);
    const overSqlite = await startDaemon(await freePorts(), [`--store=sqlite:${join(dir, 'scitags.sqlite')}`]);
    try {
      const from = Math.floor(t0 / 60_000) * 60 - 600;
      const to = from + 3600;
      for (const q of [
        'groupBy=community,activity&step=1h',
        'groupBy=class&step=60s',
        'groupBy=link,direction&step=1h',
        'groupBy=exporter,class&community=atlas&step=10m',
        'groupBy=community&class=scitags&step=1h',
      ]) {
        const path = `/api/v1/traffic?from=${from}&to=${to}&${q}`;
        const a = await getJson<Record<string, unknown>>(overInflux.apiUrl + path);
        const b = await getJson<Record<string, unknown>>(overSqlite.apiUrl + path);
        expect(a, q).toEqual(b);
        expect((a.series as unknown[]).length, q).toBeGreaterThan(0);
      }
    } finally {
      await overInflux.stop();
      await overSqlite.stop();
    }
  });

  it('survives an InfluxDB outage: writes spool to disk, replay in order, totals equal an uninterrupted run', async () => {
    const registry = () => loadSnapshot(0);
    const base = influxStoreSchema.parse({ type: 'influx', url: `http://127.0.0.1:${influxd().port}` });
    const mk = (database: string, spoolDir = mkdtempSync(join(tmpdir(), 'spool-'))) =>
      createInfluxStore(
        { ...base, database, spoolDir, timeoutMs: 2000, continuousQueries: false },
        {
          registry,
          links: [{ exporter: '192.0.2.1', ifIndex: 7, name: 'to-cern', capacityBps: 1e11 }],
          log: silentLogger(),
          bucketSeconds: 60,
        },
      );
    // Recent buckets: influxd silently drops points older than the retention policy (30 d).
    const T0 = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
    const row = (bucket: number, bytes: number, community: number | null): TrafficRow => ({
      bucketStartMs: T0 + bucket * 60_000,
      bucketSeconds: 60,
      exporter: '192.0.2.1',
      inIf: 7,
      outIf: 9,
      trafficClass: community === null ? 'ipv4' : 'scitags',
      community,
      activity: community === null ? null : 1,
      registered: community !== null,
      bytes,
      packets: bytes / 100,
      records: 1,
    });
    // The same write sequence, bucket 1 re-written whole after late data.
    const batches: TrafficRow[][] = [
      [row(0, 1000, 2), row(0, 500, null)],
      [row(1, 2000, 3)],
      [row(1, 2600, 3), row(1, 100, null)],
      [row(2, 700, 2)],
    ];
    const reference = await mk('reference');
    for (const b of batches) await reference.writeRows(b);
    await reference.close();

    const spoolDir = mkdtempSync(join(tmpdir(), 'spool-'));
    const first = await mk('outage', spoolDir);
    await first.writeRows(batches[0]!);
    expect(first.spoolStats()).toEqual({ batches: 0, rows: 0, bytes: 0, oldestMs: undefined, rejectedBatches: 0, lastErrorMs: undefined });
    await influxd().stop();
    const failedFrom = Date.now();
    await first.writeRows(batches[1]!);
    await first.writeRows(batches[2]!);
    expect(first.spooled).toBe(2);
    expect(first.writerStats().writeFailures).toBe(1);
    // What the scitags_influx_spool_* gauges show: 2 + 3 points (scitags_traffic + link_traffic per class).
    const spooled = first.spoolStats();
    expect(spooled).toMatchObject({ batches: 2, rows: 5, rejectedBatches: 0 });
    expect(spooled.bytes).toBe(readdirSync(spoolDir).reduce((n, f) => n + statSync(join(spoolDir, f)).size, 0));
    expect(spooled.oldestMs).toBeGreaterThanOrEqual(failedFrom);
    expect(spooled.lastErrorMs).toBeGreaterThanOrEqual(failedFrom);
    // The collector stops while InfluxDB is still down: the spool stays on disk...
    await first.close();
    // ...and the next run picks it up.
    const store = await mk('outage', spoolDir);
    expect(store.spooled).toBe(2);
    await influxd().restart();
    await store.writeRows(batches[3]!); // queued behind the spool, not ahead of it
    expect(store.spooled).toBe(3);
    // node-influx backs off from a host that failed; the spool drains once it is retried.
    await waitFor(async () => {
      await store.flush();
      return store.spooled === 0;
    }, 30_000);
    expect(store.spoolStats()).toMatchObject({ batches: 0, rows: 0, bytes: 0, oldestMs: undefined });

    const read = async (database: string) => {
      const influx = new InfluxDB({ host: '127.0.0.1', port: influxd().port, database });
      return {
        scitags: await influx.query('SELECT "bytes", "packets", "records", "community_id" FROM "scitags_traffic"'),
        links: await influx.query('SELECT "bytes", "class", "in_capacity_bps", "in_link", "out_link" FROM "link_traffic"'),
      };
    };
    const got = await read('outage');
    expect(got).toEqual(await read('reference'));
    expect(got.scitags.map((r) => (r as unknown as { bytes: number }).bytes)).toEqual([1000, 2600, 700]);
    expect(
      got.links
        .map((r) => r as unknown as Record<string, unknown>)
        .map((r) => [r.class, r.bytes, r.in_capacity_bps, r.in_link, r.out_link]),
    ).toEqual([
      ['ipv4', 500, 1e11, 'to-cern', '9'],
      ['scitags', 1000, 1e11, 'to-cern', '9'],
      ['ipv4', 100, 1e11, 'to-cern', '9'],
      ['scitags', 2600, 1e11, 'to-cern', '9'],
      ['scitags', 700, 1e11, 'to-cern', '9'],
    ]);
    await store.close();
  });
});

describe.skipIf(!influxdAvailable())('InfluxDB provisioning', () => {
  it('creates the database, raw and rollup_1h retention policies and continuous queries that sum hours with every tag', async () => {
    const db = await startInfluxd();
    try {
      const cfg = influxStoreSchema.parse({
        type: 'influx',
        url: `http://127.0.0.1:${db.port}`,
        database: 'prov',
        spoolDir: mkdtempSync(join(tmpdir(), 'spool-')),
      });
      const store = await createInfluxStore(cfg, { registry: () => loadSnapshot(0), links: [], log: silentLogger(), bucketSeconds: 60 });
      const influx = new InfluxDB({ host: '127.0.0.1', port: db.port, database: 'prov' });
      const rps = await influx.showRetentionPolicies('prov');
      expect(rps.map((r) => [r.name, r.duration, r.default])).toEqual([
        ['autogen', '0s', false],
        ['raw', '720h0m0s', true],
        ['rollup_1h', '9600h0m0s', false],
      ]);
      const cqs = (await influx.query('SHOW CONTINUOUS QUERIES')).filter((r) => (r as { name?: string }).name !== undefined);
      expect(cqs.map((r) => (r as unknown as { name: string }).name).sort()).toEqual(['cq_firefly_1h', 'cq_link_1h', 'cq_scitags_1h']);
      // Provisioning again (a restart) changes nothing and does not fail.
      await createInfluxStore(cfg, { registry: () => loadSnapshot(0), links: [], log: silentLogger(), bucketSeconds: 60 }).then((s) =>
        s.close(),
      );

      // Two 1-minute buckets in one hour roll up to their sum, tags kept. The CQ runs every
      // 10 minutes; its statement is run here over the same hour to check what it computes.
      const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
      const row = (min: number, bytes: number): TrafficRow => ({
        bucketStartMs: hour + min * 60_000,
        bucketSeconds: 60,
        exporter: '192.0.2.1',
        inIf: 1,
        outIf: 2,
        trafficClass: 'scitags',
        community: 2,
        activity: 1,
        registered: true,
        bytes,
        packets: 2,
        records: 1,
      });
      await store.writeRows([row(5, 1000)]);
      await store.writeRows([row(6, 500)]);
      const cq = (await influx.query<{ name: string; query: string }>('SHOW CONTINUOUS QUERIES')).find((r) => r.name === 'cq_scitags_1h')!;
      const select = /BEGIN (SELECT .*) END$/
        .exec(cq.query)![1]!
        .replace(' GROUP BY', ` WHERE time >= ${hour}ms AND time < ${hour + 3_600_000}ms GROUP BY`);
      await influx.query(select);
      const rolled = await influx.query('SELECT * FROM "prov"."rollup_1h"."scitags_traffic"');
      expect(
        rolled.map((r) => {
          const { time, ...rest } = r as unknown as Record<string, unknown> & { time: Date };
          return { time: time.getTime(), ...rest };
        }),
      ).toEqual([
        {
          time: hour,
          activity: 'default',
          activity_id: '1',
          bytes: 1500,
          community: 'atlas',
          community_id: '2',
          exporter: '192.0.2.1',
          in_if: '1',
          in_link: '1',
          out_if: '2',
          out_link: '2',
          packets: 4,
          records: 2,
        },
      ]);
      await store.close();
    } finally {
      await db.destroy();
    }
  });
  it('cq_firefly_1h rolls an hour of scitags_firefly up per instance: counts, sums and bins summed, maxima by max', async () => {
    const db = await startInfluxd();
    try {
      const cfg = influxStoreSchema.parse({
        type: 'influx',
        url: `http://127.0.0.1:${db.port}`,
        database: 'ffroll',
        spoolDir: mkdtempSync(join(tmpdir(), 'spool-')),
      });
      const open = (instance: string) =>
        createInfluxStore(cfg, { registry: () => loadSnapshot(0), links: [], log: silentLogger(), bucketSeconds: 60, instance });
      const a = await open('a');
      const b = await open('b');
      const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
      const row = (min: number, over: Partial<FireflyRow>): FireflyRow => fireflyRow(hour + min * 60_000, over);
      await a.writeFireflyRows([row(5, {})]);
      await a.writeFireflyRows([
        row(6, {
          flowsStarted: 2,
          flowsEnded: 2,
          flowsExpired: 1,
          flowsWithoutStart: 1,
          bytes: 3000,
          durationSeconds: 2.5,
          throughputSum: 9600,
          throughputCount: 2,
          throughputMax: 9000,
          rttSum: 30.5,
          rttCount: 2,
          rttMax: 20,
          deliveryRateSum: 5e6,
          deliveryRateCount: 2,
          deliveryRateMax: 4e6,
          retransmits: 3,
          durationHistogram: [1, 1, 0, 0, 0, 0],
          throughputHistogram: [2, 0, 0, 0, 0, 0],
        }),
      ]);
      await b.writeFireflyRows([row(5, { bytes: 7, throughputMax: 56, throughputSum: 56 })]);
      await a.flush();
      await b.flush();
      const influx = new InfluxDB({ host: '127.0.0.1', port: db.port, database: 'ffroll' });
      const cq = (await influx.query<{ name: string; query: string }>('SHOW CONTINUOUS QUERIES')).find((r) => r.name === 'cq_firefly_1h')!;
      expect(cq.query).toContain('INTO ffroll.rollup_1h.scitags_firefly FROM ffroll.raw.scitags_firefly GROUP BY time(1h), *');
      // The CQ runs every 10 minutes; its statement is run here over the same hour.
      const select = /BEGIN (SELECT .*) END$/
        .exec(cq.query)![1]!
        .replace(' GROUP BY', ` WHERE time >= ${hour}ms AND time < ${hour + 3_600_000}ms GROUP BY`);
      await influx.query(select);
      const rolled = (await influx.query('SELECT * FROM "ffroll"."rollup_1h"."scitags_firefly"')) as unknown as (Record<string, unknown> & {
        time: Date;
        instance: string;
      })[];
      const pick = (r: Record<string, unknown>) =>
        [
          'flows_started',
          'flows_ended',
          'flows_expired',
          'flows_without_start',
          'bytes',
          'duration_seconds',
          'throughput_sum_bps',
          'throughput_count',
          'throughput_max_bps',
          'rtt_sum_ms',
          'rtt_count',
          'rtt_max_ms',
          'delivery_rate_sum_bps',
          'delivery_rate_count',
          'delivery_rate_max_bps',
          'retransmits',
          'duration_under_1s',
          'duration_1s_10s',
          'duration_10s_1m',
          'throughput_under_1m',
        ].map((f) => r[f]);
      expect(rolled.map((r) => [r.time.getTime(), r.instance, r.community, r.src_site, r.dst_site, r.ip_version])).toEqual([
        [hour, 'a', 'atlas', 'CERN-PROD', 'BNL-ATLAS', '6'],
        [hour, 'b', 'atlas', 'CERN-PROD', 'BNL-ATLAS', '6'],
      ]);
      expect(rolled.map(pick)).toEqual([
        [3, 3, 1, 1, 4000, 12.5, 10400, 3, 9000, 30.5, 2, 20, 5e6, 2, 4e6, 3, 1, 1, 1, 3],
        // no rtt or delivery rate in the hour: sums 0, no maximum
        [1, 1, 0, 0, 7, 10, 56, 1, 56, 0, 0, null, 0, 0, null, 0, 0, 0, 1, 1],
      ]);
      await a.close();
      await b.close();
    } finally {
      await db.destroy();
    }
  });
  it('replaces a cq_link_1h of an older release (no capacities) and keeps a current one', async () => {
    const db = await startInfluxd();
    try {
      const influx = new InfluxDB({ host: '127.0.0.1', port: db.port, database: 'old' });
      await influx.createDatabase('old');
      await influx.query('CREATE RETENTION POLICY "raw" ON "old" DURATION 30d REPLICATION 1 DEFAULT');
      await influx.query('CREATE RETENTION POLICY "rollup_1h" ON "old" DURATION 400d REPLICATION 1');
      // what releases before the capacity fields created
      await influx.query(
        'CREATE CONTINUOUS QUERY "cq_link_1h" ON "old" RESAMPLE EVERY 10m FOR 2h BEGIN SELECT sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records" ' +
          'INTO "old"."rollup_1h"."link_traffic" FROM "old"."raw"."link_traffic" GROUP BY time(1h), * END',
      );
      const cfg = influxStoreSchema.parse({
        type: 'influx',
        url: `http://127.0.0.1:${db.port}`,
        database: 'old',
        spoolDir: mkdtempSync(join(tmpdir(), 'spool-')),
      });
      const queries = async () =>
        Object.fromEntries(
          (await influx.query<{ name: string; query: string }>('SHOW CONTINUOUS QUERIES'))
            .filter((r) => r.name)
            .map((r) => [r.name, r.query]),
        );
      await (await createInfluxStore(cfg, { registry: () => loadSnapshot(0), links: [], log: silentLogger(), bucketSeconds: 60 })).close();
      const first = await queries();
      expect(first.cq_link_1h).toBe(
        'CREATE CONTINUOUS QUERY cq_link_1h ON old RESAMPLE EVERY 10m FOR 2h BEGIN SELECT sum(bytes) AS bytes, sum(packets) AS packets, sum(records) AS records, ' +
          'max(in_capacity_bps) AS in_capacity_bps, max(out_capacity_bps) AS out_capacity_bps INTO old.rollup_1h.link_traffic FROM old.raw.link_traffic GROUP BY time(1h), * END',
      );
      expect(Object.keys(first).sort()).toEqual(['cq_firefly_1h', 'cq_link_1h', 'cq_scitags_1h']);
      await (await createInfluxStore(cfg, { registry: () => loadSnapshot(0), links: [], log: silentLogger(), bucketSeconds: 60 })).close();
      expect(await queries()).toEqual(first);
    } finally {
      await db.destroy();
    }
  });
});

describe.skipIf(!influxdAvailable())('link names learnt from the exporter', () => {
  it('tags in_link / out_link with interfaceName (IE 82) from interface options when the config names no link', async () => {
    const db = await startInfluxd();
    const ports = await freePorts();
    const daemon = await startDaemon(ports, [`--store=influx://127.0.0.1:${db.port}/scitags`]);
    try {
      const opt = [f('ingressInterface', 4), f('interfaceName', VARLEN)];
      const data = [
        f('octetDeltaCount', 4),
        f('packetDeltaCount', 4),
        f('ingressInterface', 4),
        f('egressInterface', 4),
        f('ipVersion', 1),
      ];
      const msg = ipfixMessage({ domain: 1 }, [
        ipfixOptionsTemplateSet([{ id: 400, fields: opt, scopeCount: 1 }]),
        ipfixDataSet(400, opt, [
          [7, 'et-0/0/1 to CERN'],
          [9, 'ae2.lan'],
        ]),
        ipfixTemplateSet([{ id: 300, fields: data }]),
        ipfixDataSet(300, data, [[1500, 3, 7, 9, 4]]),
      ]);
      const tx = createSocket('udp4');
      await new Promise<void>((r) => tx.send(msg, ports.ipfix, '127.0.0.1', () => r()));
      tx.close();
      await waitFor(
        async () => (await getJson<{ exporters: { records: number }[] }>(`${daemon.apiUrl}/api/v1/exporters`)).exporters[0]?.records === 1,
      );
      const links = await getJson<{ links: { name: string; source: string }[] }>(`${daemon.apiUrl}/api/v1/links`);
      expect(links.links.map((l) => [l.name, l.source])).toEqual([
        ['et-0/0/1 to CERN', 'learned'],
        ['ae2.lan', 'learned'],
      ]);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    const influx = new InfluxDB({ host: '127.0.0.1', port: db.port, database: 'scitags' });
    const rows = await influx.query<{ in_link: string; out_link: string; in_if: string; bytes: number }>(
      'SELECT "bytes", "in_link", "out_link", "in_if" FROM "link_traffic"',
    );
    expect(rows.map((r) => [r.in_link, r.out_link, r.in_if, r.bytes])).toEqual([['et-0/0/1 to CERN', 'ae2.lan', '7', 1500]]);
    await db.destroy();
  });
});
