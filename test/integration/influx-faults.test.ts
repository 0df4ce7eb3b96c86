import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { replayDatagrams } from '../../collectors/replay.js';
import { influxStoreSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { createInfluxStore } from '../../src/store/influx/store.js';
import type { TrafficRow } from '../../src/store/types.js';
import { type Daemon, type DaemonPorts, freePorts, getJson, metricValue, scrape, startDaemon, waitFor } from '../support/daemon.js';
import { addCounts, CORPUS_CAPTURES, type ExpectedCounts, expectedTotals, fixturePath, loadTruth } from '../support/expected.js';
import { influxdAvailable } from '../support/influxd.js';
import { useInfluxd } from '../support/use-influxd.js';

interface Health {
  status: string;
  reasons: { reason: string; metric: string; detail: string }[];
}

describe.skipIf(!influxdAvailable())('InfluxDB faults handled against a real influxd', () => {
  const influxd = useInfluxd();

  const registry = () => loadSnapshot(0);
  const T0 = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
  const row = (bucketStartMs: number, bytes: number): TrafficRow => ({
    bucketStartMs,
    bucketSeconds: 60,
    exporter: '192.0.2.1',
    inIf: 7,
    outIf: 9,
    trafficClass: 'scitags',
    community: 2,
    activity: 1,
    registered: true,
    bytes,
    packets: bytes / 100,
    records: 1,
  });
  const mk = (database: string, spoolDir = mkdtempSync(join(tmpdir(), 'spool-'))) =>
    createInfluxStore(
      { ...influxStoreSchema.parse({ type: 'influx', url: influxd().url }), database, spoolDir, timeoutMs: 2000, continuousQueries: false },
      { registry, links: [], log: silentLogger(), bucketSeconds: 60 },
    );
  type Capture = (typeof CORPUS_CAPTURES)[number];
  const sendCapture = async (ports: DaemonPorts, c: Capture): Promise<number> => {
    const cap = readCaptureFile(fixturePath(`${c.name}.pcap`));
    await replayDatagrams(cap.datagrams, { host: '127.0.0.1', port: ports[c.port], speed: 0, rate: 5000, onlyDstPort: 0 });
    return cap.datagrams.length;
  };
  /** Waits until the daemon has decoded `n` datagrams. */
  const waitCounted = (d: Daemon, n: number): Promise<void> =>
    waitFor(async () => {
      const ex = await getJson<{ exporters: { datagrams: number }[] }>(`${d.apiUrl}/api/v1/exporters`);
      return ex.exporters.reduce((s, e) => s + e.datagrams, 0) === n;
    });
  /** The per-experiment totals in `database` are exactly the ground truth of the captures sent. */
  const expectExactTotals = async (database: string, captures: Capture[]): Promise<void> => {
    const influx = new InfluxDB({ host: '127.0.0.1', port: influxd().port, database });
    const pairs = await influx.query<{ community_id: string; activity_id: string; bytes: number; packets: number; records: number }>(
      'SELECT sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records" FROM "scitags_traffic" GROUP BY "community_id", "activity_id"',
    );
    const reg = loadSnapshot(0);
    const want = new Map<string, ExpectedCounts>();
    for (const c of captures) {
      for (const [pair, counts] of expectedTotals(loadTruth(fixturePath(`${c.name}.truth.json`))).pairs) {
        const [community, activity] = pair.split('/').map(Number) as [number, number];
        const key = reg.isRegistered(community, activity) ? pair : 'unregistered/unregistered';
        want.set(key, addCounts(want.get(key), counts));
      }
    }
    expect(
      new Map(pairs.map((r) => [`${r.community_id}/${r.activity_id}`, { records: r.records, packets: r.packets, bytes: r.bytes }])),
    ).toEqual(want);
  };
  const scitagsBytes = async (database: string): Promise<unknown[]> =>
    (await new InfluxDB({ host: '127.0.0.1', port: influxd().port, database }).query('SELECT "bytes" FROM "scitags_traffic"')).map((r) => [
      (r as unknown as { time: Date }).time.getTime(),
      (r as unknown as { bytes: unknown }).bytes,
    ]);

  it('a database dropped while running is provisioned again on the next write (counted); nothing written after the drop is lost', async () => {
    const store = await mk('dropped');
    await store.writeRows([row(T0, 1000)]);
    const admin = new InfluxDB({ host: '127.0.0.1', port: influxd().port });
    await admin.dropDatabase('dropped');
    await store.writeRows([row(T0 + 60_000, 2000)]); // 404 database not found: spooled, provisioning due
    expect(store.writeHealth()).toMatchObject({ failures: 1, consecutiveFailures: 1, lastErrorClass: 'http_404', lastErrorStatus: 404 });
    expect(store.spooled).toBe(1);
    await store.writeRows([row(T0 + 120_000, 3000)]); // behind the spool
    await store.flush();
    expect(store.spooled).toBe(0);
    expect(store.writeHealth()).toMatchObject({ failures: 1, consecutiveFailures: 0, reprovisions: 1, deadLetterBatches: 0 });
    expect((await admin.showRetentionPolicies('dropped')).map((p) => p.name)).toEqual(['autogen', 'raw', 'rollup_1h']);
    expect(await scitagsBytes('dropped')).toEqual([
      [T0 + 60_000, 2000],
      [T0 + 120_000, 3000],
    ]);
    await store.close();
  });

  it('a batch InfluxDB refuses with 400 (field type conflict) is dead-lettered, counted, and never blocks later batches', async () => {
    const spoolDir = mkdtempSync(join(tmpdir(), 'spool-'));
    const store = await mk('conflict', spoolDir);
    const raw = new InfluxDB({ host: '127.0.0.1', port: influxd().port, database: 'conflict' });
    // bytes as a string in the shard of T0 - 10 d: every integer bytes point there conflicts.
    const OLD = T0 - 10 * 86_400_000;
    await raw.writePoints([
      { measurement: 'scitags_traffic', tags: { community_id: '2' }, fields: { bytes: 'text' }, timestamp: new Date(OLD) },
    ]);
    await store.writeRows([row(OLD, 1)]); // straight to InfluxDB: refused for good
    await store.writeRows([row(T0, 1000)]);
    expect(store.writeHealth()).toMatchObject({ deadLetterBatches: 1, failures: 1, consecutiveFailures: 0, lastErrorStatus: 400 });
    expect(store.spooled).toBe(0);
    // The same from the spool: a refused batch at its head is moved aside and the next one goes out.
    await influxd().stop();
    await store.writeRows([row(OLD, 2)]);
    await store.writeRows([row(T0 + 60_000, 2000)]);
    expect(store.spooled).toBe(2);
    await influxd().restart();
    await waitFor(async () => {
      await store.flush().catch(() => undefined);
      return store.spooled === 0;
    }, 30_000);
    const h = store.writeHealth();
    expect(h.deadLetterBatches).toBe(2);
    expect(h.consecutiveFailures).toBe(0);
    const letters = readdirSync(join(spoolDir, 'dead-letter')).sort();
    expect(letters).toHaveLength(2);
    for (const [i, name] of letters.entries()) {
      const doc = JSON.parse(readFileSync(join(spoolDir, 'dead-letter', name), 'utf8')) as {
        status: number;
        error: string;
        points: { measurement: string; fields: { bytes: number } }[];
      };
      expect(doc.status).toBe(400);
      expect(doc.error).toContain('field type conflict');
      expect(doc.points.find((p) => p.measurement === 'scitags_traffic')?.fields.bytes).toBe(i + 1);
    }
    // (The string point of the older shard is not shown beside integers.)
    expect(await scitagsBytes('conflict')).toEqual([
      [T0, 1000],
      [T0 + 60_000, 2000],
    ]);
    await store.close();
  });

  it('influxd stopped mid-run: /health degraded with the store reason within seconds, failures counted, totals exact after the restart', async () => {
    const ports = await freePorts();
    const d = await startDaemon(ports, [
      `--store=influx://127.0.0.1:${influxd().port}/outage`,
      '--store-stats-interval-seconds=1',
      '--workers=1',
    ]);
    const [before, during] = [CORPUS_CAPTURES[0], CORPUS_CAPTURES[2]];
    const send = (c: Capture): Promise<number> => sendCapture(ports, c);
    const counted = (n: number): Promise<void> => waitCounted(d, n);
    try {
      let datagrams = await send(before);
      await counted(datagrams);
      expect((await getJson<Health>(`${d.apiUrl}/health`)).status).toBe('ok');
      await influxd().stop();
      const stoppedAt = Date.now();
      datagrams += await send(during);
      await counted(datagrams);
      let health: Health | undefined;
      await waitFor(async () => {
        health = await getJson<Health>(`${d.apiUrl}/health`);
        return health.status === 'degraded';
      }, 10_000);
      const degradedAfterMs = Date.now() - stoppedAt;
      expect(health!.reasons.map((r) => [r.reason, r.metric])).toContainEqual([
        'store_write_failing',
        'scitags_store_write_failures_total',
      ]);
      expect((await fetch(`${d.apiUrl}/health?strict=1`)).status).toBe(503);
      const metrics = await (await fetch(`${d.apiUrl}/metrics`)).text();
      expect(metricValue(metrics, 'scitags_store_write_failures_total')).toBeGreaterThan(0);
      expect(metricValue(metrics, 'scitags_store_last_error_timestamp_seconds') * 1000).toBeGreaterThanOrEqual(stoppedAt - 1000);
      expect(metrics).toMatch(/scitags_store_last_error_info\{class="(connection|timeout|http_5xx)"\} 1/);
      console.log(`health degraded ${degradedAfterMs} ms after influxd stopped`);
      await influxd().restart();
      await waitFor(async () => (await getJson<Health>(`${d.apiUrl}/health`)).status === 'ok', 30_000);
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
    // Outage points lost: 0.
    await expectExactTotals('outage', [before, during]);
  });

  it('influxd frozen (SIGSTOP): the /ping probe shows store_unreachable within interval + timeout, ok after SIGCONT, totals exact', async () => {
    const ports = await freePorts();
    const d = await startDaemon(ports, [
      `--store=influx://127.0.0.1:${influxd().port}/frozen`,
      '--store-probe-interval-seconds=1',
      '--store-timeout-ms=2000',
      '--workers=1',
    ]);
    const [before, during] = [CORPUS_CAPTURES[0], CORPUS_CAPTURES[2]];
    const send = (c: Capture): Promise<number> => sendCapture(ports, c);
    const counted = (n: number): Promise<void> => waitCounted(d, n);
    let frozen = false;
    try {
      let datagrams = await send(before);
      await counted(datagrams);
      expect((await getJson<Health>(`${d.apiUrl}/health`)).status).toBe('ok');
      expect(await scrape(d.apiUrl, 'scitags_store_probe_ok')).toBe(1);
      influxd().signal('SIGSTOP');
      frozen = true;
      const frozenAt = Date.now();
      let health: Health | undefined;
      await waitFor(async () => {
        health = await getJson<Health>(`${d.apiUrl}/health`);
        return health.reasons.some((r) => r.reason === 'store_unreachable');
      }, 10_000);
      const degradedAfterMs = Date.now() - frozenAt;
      console.log(`store_unreachable ${degradedAfterMs} ms after influxd was frozen`);
      // Probe interval (1 s) + probe timeout (min(2000, 2000) ms), plus the poll and scheduling slack.
      expect(degradedAfterMs).toBeLessThan(1000 + 2000 + 1500);
      expect(health!.status).toBe('degraded');
      expect(health!.reasons.find((r) => r.reason === 'store_unreachable')).toEqual({
        reason: 'store_unreachable',
        metric: 'scitags_store_probe_ok',
        detail: expect.stringMatching(/\(timeout\): GET \/ping timed out after 2000 ms$/),
      });
      expect(await scrape(d.apiUrl, 'scitags_store_probe_ok')).toBe(0);
      // Traffic while frozen: written at the stop, after the thaw (spooled if a write timed out meanwhile).
      datagrams += await send(during);
      await counted(datagrams);
      influxd().signal('SIGCONT');
      frozen = false;
      await waitFor(async () => (await getJson<Health>(`${d.apiUrl}/health`)).status === 'ok', 30_000);
      expect(await scrape(d.apiUrl, 'scitags_store_probe_ok')).toBe(1);
    } finally {
      if (frozen) influxd().signal('SIGCONT');
      expect(await d.stop('SIGTERM')).toBe(0);
    }
    await expectExactTotals('frozen', [before, during]);
  }, 90_000);
});
