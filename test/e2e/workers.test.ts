import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import type { ExporterInfo } from '../../src/api/types.js';
import { replayDatagrams } from '../../collectors/replay.js';
import { f, ipfixDataSet, ipfixMessage, ipfixOptionsTemplateSet, ipfixTemplateSet } from '../builders/ipfix.js';
import { freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { addCounts, type ExpectedCounts, expectedTotals, FIXTURES, fixturesWithTruth, loadTruth } from '../support/expected.js';
import { influxdAvailable, type InfluxdHandle, startInfluxd } from '../support/influxd.js';

/**
 * The same datagrams through one decode thread and through three worker threads give the
 * same totals, the same /api/v1/exporters figures and the same InfluxDB points. Every capture
 * fixture with a truth file is sent from its own loopback address (127.0.1.x), so the
 * exporters land on different workers; a builder case sends IPFIX sampling options and the
 * data they apply to from two source ports of one exporter, which must meet in one worker.
 */

const BUILDER_EXPORTER = '127.0.2.1';
const BUILDER_LABELS = { '2/1': 0x10004, '65/6': 0x20818 } as const;

interface Run {
  exporters: Omit<ExporterInfo, 'sessions'>[];
  /** "exporter class community/activity" -> totals, from /api/v1/traffic after a restart. */
  traffic: Map<string, ExpectedCounts>;
}

async function sendFrom(address: string, port: number, payload: Uint8Array, to: number): Promise<void> {
  const s: Socket = createSocket('udp4');
  await new Promise<void>((r) => s.bind(port, address, () => r()));
  await new Promise<void>((r, j) => s.send(payload, to, '127.0.0.1', (err) => (err ? j(err) : r())));
  await new Promise<void>((r) => s.close(() => r()));
}

/** samplerId 1 at 1:10 (samplerMode 1, samplerRandomInterval 10; RFC 7270 / IANA IEs 48-50). */
const OPTIONS = (() => {
  const opt = [f('samplerId', 1), f('samplerMode', 1), f('samplerRandomInterval', 4)];
  return ipfixMessage({ domain: 7 }, [
    ipfixOptionsTemplateSet([{ id: 400, fields: opt, scopeCount: 1 }]),
    ipfixDataSet(400, opt, [[1, 2, 10]]),
  ]);
})();
const DATA = (() => {
  const fields = [f('octetDeltaCount', 8), f('packetDeltaCount', 8), f('ipVersion', 1), f('flowLabelIPv6', 4), f('samplerId', 1)];
  return ipfixMessage({ domain: 7 }, [
    ipfixTemplateSet([{ id: 256, fields }]),
    ipfixDataSet(256, fields, [
      [1000, 2, 6, BUILDER_LABELS['2/1'], 1],
      [500, 1, 6, BUILDER_LABELS['65/6'], 1],
    ]),
  ]);
})();

async function run(workers: number, store: string, dir: string): Promise<Run> {
  const ports = await freePorts();
  const d = await startDaemon(ports, [`--workers=${workers}`, store], {}, dir);
  let sent = 0;
  try {
    const captures = fixturesWithTruth();
    for (const [i, c] of captures.entries()) {
      const cap = readCaptureFile(c.pcap);
      const port = c.name.startsWith('sflow') ? ports.sflow : c.name.startsWith('netflow') ? ports.netflow : ports.ipfix;
      await replayDatagrams(cap.datagrams, {
        host: '127.0.0.1',
        port,
        speed: 0,
        rate: 5000,
        onlyDstPort: 0,
        bindAddress: `127.0.1.${i + 1}`,
      });
      sent += cap.datagrams.length;
    }
    // Options from one source port, then data from another: both reach the exporter's worker.
    await sendFrom(BUILDER_EXPORTER, 0, OPTIONS, ports.ipfix);
    sent++;
    const total = async (): Promise<number> =>
      (await getJson<{ exporters: ExporterInfo[] }>(`${d.apiUrl}/api/v1/exporters`)).exporters.reduce((n, e) => n + e.datagrams, 0);
    await waitFor(async () => (await total()) === sent);
    await sendFrom(BUILDER_EXPORTER, 0, DATA, ports.ipfix);
    sent++;
    await waitFor(async () => (await total()) === sent);
    const { exporters } = await getJson<{ exporters: (ExporterInfo & Record<string, unknown>)[] }>(`${d.apiUrl}/api/v1/exporters`);
    // Source ports are ephemeral, times differ: everything else must match.
    const view = exporters.map(({ sessions: _s, lastSeen: _l, lastSeenMs: _m, lastSeenAgeSeconds: _a, ...rest }) => rest);
    expect(await d.stop()).toBe(0);
    const again = await startDaemon(await freePorts(), [`--workers=${workers}`, store], {}, dir);
    try {
      const from = Math.floor(Date.now() / 1000) - 3600;
      const answer = await getJson<{ series: { group: Record<string, string | number | null>; totals: ExpectedCounts }[] }>(
        `${again.apiUrl}/api/v1/traffic?from=${from}&to=now&step=2h&groupBy=exporter,class,community,activity`,
      );
      const traffic = new Map<string, ExpectedCounts>();
      for (const s of answer.series) {
        const g = s.group;
        traffic.set(`${g.exporter} ${g.class} ${g.community}/${g.activity}`, {
          records: s.totals.records,
          packets: s.totals.packets,
          bytes: s.totals.bytes,
        });
      }
      return { exporters: view as Run['exporters'], traffic };
    } finally {
      await again.stop();
    }
  } catch (err) {
    await d.stop().catch(() => undefined);
    throw err;
  }
}

function perExporter(traffic: Map<string, ExpectedCounts>): Map<string, ExpectedCounts> {
  const out = new Map<string, ExpectedCounts>();
  for (const [k, v] of traffic) {
    const [exporter, cls] = k.split(' ') as [string, string];
    if (cls !== 'unknown') out.set(exporter, addCounts(out.get(exporter), v));
  }
  return out;
}

describe('one decode thread and three workers count the same', () => {
  it('identical totals and /api/v1/exporters figures, equal to the truth files', async () => {
    const one = await run(
      1,
      `--store=sqlite:${join(mkdtempSync(join(tmpdir(), 'scitags-w1-')), 's.sqlite')}`,
      mkdtempSync(join(tmpdir(), 'scitags-w1d-')),
    );
    const three = await run(
      3,
      `--store=sqlite:${join(mkdtempSync(join(tmpdir(), 'scitags-w3-')), 's.sqlite')}`,
      mkdtempSync(join(tmpdir(), 'scitags-w3d-')),
    );
    expect(three.exporters).toEqual(one.exporters);
    expect(three.traffic).toEqual(one.traffic);
    // And both equal the truth: per exporter, the sum of every class of its capture.
    const expected = new Map<string, ExpectedCounts>();
    for (const [i, c] of fixturesWithTruth().entries()) {
      const t = expectedTotals(loadTruth(c.truthFile));
      let sum: ExpectedCounts | undefined;
      for (const x of [...t.pairs.values(), t.ipv6Unmarked, t.ipv4]) sum = addCounts(sum, x);
      expected.set(`127.0.1.${i + 1}`, sum!);
    }
    // Builder case: two records at 1:10 from the options sent from another source port.
    expected.set(BUILDER_EXPORTER, { records: 2, packets: 30, bytes: 15000 });
    expect(perExporter(one.traffic)).toEqual(expected);
    expect(one.traffic.get(`${BUILDER_EXPORTER} scitags 2/1`)).toEqual({ records: 1, packets: 20, bytes: 10000 });
    expect(one.exporters.find((e) => e.address === BUILDER_EXPORTER)).toMatchObject({
      records: 2,
      samplingRates: [{ domain: 7, rate: 10, source: 'options' }],
    });
  }, 120_000);
});

describe.skipIf(!influxdAvailable())('one decode thread and three workers write the same InfluxDB points', () => {
  let db: InfluxdHandle;
  beforeAll(async () => {
    db = await startInfluxd();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('per series (every tag) sums of bytes, packets and records are identical', async () => {
    const points = async (database: string): Promise<Record<string, unknown>[]> => {
      const influx = new InfluxDB({ host: '127.0.0.1', port: db.port, database });
      const out: Record<string, unknown>[] = [];
      for (const m of ['scitags_traffic', 'link_traffic']) {
        const rows = await influx.query<Record<string, unknown>>(
          `SELECT sum("bytes") AS bytes, sum("packets") AS packets, sum("records") AS records FROM "raw"."${m}" GROUP BY *`,
        );
        for (const g of rows.groups())
          for (const r of g.rows) out.push({ measurement: m, ...g.tags, bytes: r.bytes, packets: r.packets, records: r.records });
      }
      return out.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    };
    await run(1, `--store=influx://127.0.0.1:${db.port}/w1`, mkdtempSync(join(tmpdir(), 'scitags-iw1-')));
    await run(3, `--store=influx://127.0.0.1:${db.port}/w3`, mkdtempSync(join(tmpdir(), 'scitags-iw3-')));
    const p1 = await points('w1');
    expect(p1.length).toBeGreaterThan(20);
    expect(await points('w3')).toEqual(p1);
  }, 120_000);
});

describe('decoder state across a change of worker count', () => {
  it('templates saved by one decode thread decode data sent after a restart with three workers, and back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-wstate-'));
    const store = `--store=sqlite:${join(dir, 'scitags.sqlite')}`;
    const dgrams = readCaptureFile(join(FIXTURES, 'ipfix_pmacct_nfprobe_flowlabel.pcap')).datagrams;
    // Three exporters, so the saved sessions land on different workers after the restart.
    const exporters = ['127.0.3.1', '127.0.3.2', '127.0.3.3'];
    const run = async (workers: number, payloads: Uint8Array[], expectRestored: number | undefined): Promise<number> => {
      const ports = await freePorts();
      const d = await startDaemon(ports, [`--workers=${workers}`, store], {}, dir);
      if (expectRestored !== undefined) expect(d.output()).toMatch(new RegExp(`restored templates of ${expectRestored} exporter sessions`));
      for (const addr of exporters) for (const p of payloads) await sendFrom(addr, 47000, p, ports.ipfix);
      const want = exporters.length * payloads.length;
      await waitFor(
        async () =>
          (await getJson<{ exporters: ExporterInfo[] }>(`${d.apiUrl}/api/v1/exporters`)).exporters.reduce((n, e) => n + e.datagrams, 0) ===
          want,
      );
      const metrics = await (await fetch(`${d.apiUrl}/metrics`)).text();
      const misses = [...metrics.matchAll(/scitags_template_misses_total\{[^}]*\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
      expect(await d.stop()).toBe(0);
      return misses;
    };
    // The first datagram carries pmacct's templates (and records); the rest is data only.
    await run(1, [dgrams[0]!.payload], undefined);
    expect(
      await run(
        3,
        dgrams.slice(1, 5).map((d) => d.payload),
        3,
      ),
    ).toBe(0);
    expect(
      await run(
        1,
        dgrams.slice(5).map((d) => d.payload),
        3,
      ),
    ).toBe(0);
    const reader = await startDaemon(await freePorts(), ['--workers=1', store], {}, dir);
    try {
      const from = Math.floor(Date.now() / 1000) - 3600;
      const answer = await getJson<{ series: { group: Record<string, string>; totals: ExpectedCounts }[] }>(
        `${reader.apiUrl}/api/v1/traffic?from=${from}&to=now&step=2h&groupBy=exporter`,
      );
      const t = expectedTotals(loadTruth(join(FIXTURES, 'ipfix_pmacct_nfprobe_flowlabel.truth.json')));
      let all: ExpectedCounts | undefined;
      for (const x of [...t.pairs.values(), t.ipv6Unmarked, t.ipv4]) all = addCounts(all, x);
      // truth: 43 records, 1,448 packets, 1,028,658 bytes per exporter, every record decoded
      expect(
        new Map(
          answer.series.map((s) => [s.group.exporter, { records: s.totals.records, packets: s.totals.packets, bytes: s.totals.bytes }]),
        ),
      ).toEqual(new Map(exporters.map((a) => [a, all!])));
    } finally {
      await reader.stop();
    }
  }, 120_000);
});
