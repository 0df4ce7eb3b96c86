/**
 * Fireflies end to end through the built daemon: real UDP fireflies (flowd's RFC 5424 framing,
 * XRootD's swapped second copy) -> decode stage -> flow table with site attribution from
 * configured prefixes -> per-bucket sums in SQLite -> GET /api/v1/fireflies. And the 10,000
 * production fireflies of 2022 replayed the same way, their per-experiment flow counts in the
 * API compared with those counted from the file by an independent script.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayDatagrams } from '../../collectors/replay.js';
import { freePorts, freeUdpPort, getJson, metricValue, startDaemon, waitFor } from '../support/daemon.js';
import { asSent, EXPECTED_2022, readFireflies2022 } from '../support/fireflies-2022.js';

interface Answer {
  series: {
    group: Record<string, string | number>;
    totals: {
      flowsStarted: number;
      flowsEnded: number;
      flowsExpired: number;
      flowsWithoutStart: number;
      bytes: number;
      durationSeconds: number;
    };
  }[];
}

function firefly(state: 'start' | 'end', swapped: boolean): string {
  const a = { ip: '2001:db8:1::10', port: 40000 };
  const b = { ip: '2001:db8:2::20', port: 1094 };
  const [src, dst] = swapped ? [b, a] : [a, b];
  const body = {
    version: 1,
    'flow-lifecycle': {
      state,
      'current-time': '2026-11-29T10:00:30.000000+00:00',
      'start-time': '2026-11-29T10:00:00.000000+00:00',
      ...(state === 'end' ? { 'end-time': '2026-11-29T10:00:25.000000+00:00' } : {}),
    },
    'flow-id': { afi: 'ipv6', 'src-ip': src.ip, 'dst-ip': dst.ip, protocol: 'tcp', 'src-port': src.port, 'dst-port': dst.port },
    context: { 'experiment-id': 2, 'activity-id': 1, application: 'xrootd' },
    ...(state === 'end' ? { usage: { received: 1000, sent: 4000 } } : {}),
  };
  return `<134>1 2026-11-29T10:00:30.000000+00:00 host.example xrootd - firefly-json - ${JSON.stringify(body)}`;
}

/** A config of one-second buckets written at once, so the API has a flow a moment after its event. */
function writeConfig(dir: string, extra: string[]): string {
  const config = join(dir, 'config.yaml');
  writeFileSync(config, ['aggregation:', '  bucketSeconds: 1', '  graceSeconds: 0', '  lateWindowSeconds: 3600', ...extra, ''].join('\n'));
  return config;
}

/**
 * Flows per experiment id of the 2022 file when it is replayed in order, counted by
 * tools/firefly-flow-counts.py (Python, from the README's flow-table rules, not from our code):
 *   python3 tools/firefly-flow-counts.py ../shared/external-fireflies/firefly-collector_test_data_2022.log.tgz
 * which also reports 0 expired and 0 duplicates (every 5-tuple of the file is one start, one
 * end, or one start then one end), and the same counts with the relay's logged times as
 * receive times (--receive-times=logged), so the fast replay does not change them.
 */
const FLOWS_2022 = [
  { community: 16, flowsStarted: 3_085, flowsEnded: 2_601, flowsWithoutStart: 314, flowsExpired: 0 },
  { community: 23, flowsStarted: 2_152, flowsEnded: 2_161, flowsWithoutStart: 448, flowsExpired: 0 },
];

describe('fireflies through the built daemon to /api/v1/fireflies', () => {
  it('counts one flow for XRootD’s two copies, attributes both sites, and sums the ended flow', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-ff-api-'));
    const config = writeConfig(dir, ['sites:', '  prefixes:', "    SITE-A: ['2001:db8:1::/48']", "    SITE-B: ['2001:db8:2::/48']"]);
    const ports = await freePorts();
    const port = await freeUdpPort();
    const t0 = Date.now();
    const daemon = await startDaemon(ports, [
      `--config=${config}`,
      `--store=sqlite:${join(dir, 'scitags.sqlite')}`,
      `--firefly-port=${port}`,
    ]);
    const socket = createSocket('udp4');
    try {
      for (const text of [firefly('start', false), firefly('start', true), firefly('end', false), firefly('end', true)]) {
        await new Promise<void>((resolve, reject) =>
          socket.send(Buffer.from(text), port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
        );
      }
      const from = Math.floor(t0 / 1000) - 60;
      const url = `${daemon.apiUrl}/api/v1/fireflies?from=${from}&to=${from + 3600}&step=1h&groupBy=community,activity,srcSite,dstSite`;
      let answer: Answer | undefined;
      await waitFor(async () => {
        answer = await getJson<Answer>(url);
        return answer.series.some((s) => s.totals.flowsEnded > 0);
      }, 20_000);
      expect(answer!.series.map((s) => [s.group.community, s.group.activity, s.group.srcSite, s.group.dstSite, s.totals])).toEqual([
        [2, 1, 'SITE-A', 'SITE-B', expect.objectContaining({ flowsStarted: 1, flowsEnded: 1, bytes: 5000, durationSeconds: 25 })],
      ]);
    } finally {
      socket.close();
      expect(await daemon.stop()).toBe(0);
    }
  }, 60_000);

  const lines = readFireflies2022('fireflies-api e2e');
  it.skipIf(lines === undefined)(
    'the 10,000 real 2022 fireflies replayed over UDP: flows started, ended and ended without a start per experiment as counted independently from the file',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'scitags-ff-2022-'));
      const config = writeConfig(dir, []);
      const ports = await freePorts();
      const port = await freeUdpPort();
      const t0 = Date.now();
      const daemon = await startDaemon(ports, [
        `--config=${config}`,
        `--store=sqlite:${join(dir, 'scitags.sqlite')}`,
        `--firefly-port=${port}`,
      ]);
      try {
        // In file order, as the relay logged them (the flow table's counts depend on order).
        const datagrams = lines!.map((l, i) => ({
          frame: i + 1,
          timeMs: 0,
          srcAddr: '127.0.0.1',
          srcPort: 0,
          dstAddr: '127.0.0.1',
          dstPort: port,
          payload: Buffer.from(asSent(l)),
        }));
        await replayDatagrams(datagrams, { host: '127.0.0.1', port, speed: 0, rate: 5000, onlyDstPort: 0 });
        const decoded = 'scitags_records_decoded_total{protocol="firefly",exporter="127.0.0.1"}';
        await waitFor(
          async () => metricValue(await (await fetch(`${daemon.apiUrl}/metrics`)).text(), decoded) === EXPECTED_2022.fireflies,
          20_000,
        );
        const from = Math.floor(t0 / 1000) - 60;
        const url = `${daemon.apiUrl}/api/v1/fireflies?from=${from}&to=${from + 3600}&step=1h&groupBy=community`;
        // Every firefly is decoded; wait until the buckets holding the flow table's events are
        // written (its own counters, not the expected numbers, so a difference fails below).
        let answer: Answer | undefined;
        let text = '';
        const sum = (k: 'flowsStarted' | 'flowsEnded'): number => answer!.series.reduce((n, s) => n + s.totals[k], 0);
        await waitFor(async () => {
          text = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
          answer = await getJson<Answer>(url);
          return (
            sum('flowsStarted') === metricValue(text, 'scitags_firefly_flows_total{event="started"}') &&
            sum('flowsEnded') === metricValue(text, 'scitags_firefly_flows_total{event="ended"}')
          );
        }, 20_000);
        const got = answer!.series
          .map((s) => ({
            community: s.group.community,
            flowsStarted: s.totals.flowsStarted,
            flowsEnded: s.totals.flowsEnded,
            flowsWithoutStart: s.totals.flowsWithoutStart,
            flowsExpired: s.totals.flowsExpired,
          }))
          .sort((a, b) => Number(a.community) - Number(b.community));
        expect(got).toEqual(FLOWS_2022);
        expect(metricValue(text, 'scitags_firefly_flows_total{event="duplicate"}')).toBe(0);
        // 5,237 started - 4,000 of them ended: the starts whose end falls outside the capture.
        expect(metricValue(text, 'scitags_firefly_flows_live')).toBe(1_237);
      } finally {
        expect(await daemon.stop()).toBe(0);
      }
    },
    60_000,
  );
});
