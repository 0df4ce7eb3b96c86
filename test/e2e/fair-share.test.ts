import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { f, ipfixDataSet, ipfixMessage, ipfixTemplateSet } from '../builders/ipfix.js';
import { exporters, sessionSocket } from '../support/budget-probes.js';
import { freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { sumMetric } from '../support/flood.js';

const FIELDS = [
  f('sourceIPv4Address', 4),
  f('destinationIPv4Address', 4),
  f('octetDeltaCount', 4),
  f('packetDeltaCount', 4),
  f('ingressInterface', 4),
  f('egressInterface', 4),
];

/** One datagram: the template and a record per input interface in `ifs` (100 octets, 1 packet each). */
function datagram(seq: number, ifs: readonly number[]): Uint8Array {
  const records = ifs.map((i) => ({
    sourceIPv4Address: '10.0.0.1',
    destinationIPv4Address: '10.0.0.2',
    octetDeltaCount: 100,
    packetDeltaCount: 1,
    ingressInterface: i,
    egressInterface: 9999,
  }));
  return ipfixMessage({ seq, exportSecs: Math.floor(Date.now() / 1000) }, [
    ipfixTemplateSet([{ id: 256, fields: FIELDS }]),
    ipfixDataSet(256, FIELDS, records),
  ]);
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

describe('fair share of aggregation keys, over UDP', () => {
  it('an exporter spraying 1,000 interfaces folds past its share while the legitimate one keeps its keys exact; nothing lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-fair-'));
    const sqlite = join(dir, 's.sqlite');
    const ports = await freePorts();
    // One-hour buckets: the test's datagrams all fall in one bucket unless it straddles an hour.
    const daemon = await startDaemon(ports, [`--store=sqlite:${sqlite}`, '--workers=1', '--aggregation-max-live-keys=100', '--bucket=1h']);
    const legit = await sessionSocket('127.0.0.1');
    const flooder = await sessionSocket('127.0.0.2');
    try {
      const decoded = async (addr: string) => (await exporters(daemon.apiUrl)).find((e) => e.address === addr)?.records ?? 0;
      await legit.send(datagram(0, range(1, 10)), ports.ipfix);
      await waitFor(async () => (await decoded('127.0.0.1')) === 10);
      for (let d = 0; d < 20; d++) await flooder.send(datagram(d * 50, range(1000 + 50 * d, 50)), ports.ipfix);
      await waitFor(async () => (await decoded('127.0.0.2')) === 1000);
      await legit.send(datagram(10, range(1, 40)), ports.ipfix);
      await waitFor(async () => (await decoded('127.0.0.1')) === 50);
      // The per-exporter fold counter, after the snapshot and metrics sync (every second).
      let page = '';
      await waitFor(async () => {
        page = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
        return sumMetric(page, 'scitags_cardinality_folds_total') > 0;
      });
      expect(sumMetric(page, 'scitags_cardinality_exporter_folds_total', 'exporter="127.0.0.2"')).toBe(950);
      expect(sumMetric(page, 'scitags_cardinality_exporter_folds_total', 'reason="share",exporter="127.0.0.2"')).toBe(950);
      expect(sumMetric(page, 'scitags_cardinality_exporter_folds_total', 'exporter="127.0.0.1"')).toBe(0);
      expect(await getJson<{ status: string }>(`${daemon.apiUrl}/health`)).toMatchObject({ status: 'ok' });
    } finally {
      legit.socket.close();
      flooder.socket.close();
      expect(await daemon.stop()).toBe(0);
    }
    const db = new Database(sqlite, { readonly: true });
    try {
      const rows = (exporter: string) =>
        db
          .prepare(
            'SELECT in_if AS inIf, SUM(bytes) AS bytes, SUM(records) AS records FROM traffic WHERE exporter = ? GROUP BY in_if ORDER BY in_if',
          )
          .all(exporter) as { inIf: number; bytes: number; records: number }[];
      // The legitimate exporter: 40 keys of its own, exact (interfaces 1..10 twice), none folded.
      expect(rows('127.0.0.1')).toEqual(range(1, 40).map((i) => ({ inIf: i, bytes: i <= 10 ? 200 : 100, records: i <= 10 ? 2 : 1 })));
      // The flooder: its share (50 keys: half of 100 with two exporters holding keys), the rest
      // in its overflow key (in_if -1), every record kept.
      const flood = rows('127.0.0.2');
      expect(flood[0]).toEqual({ inIf: -1, bytes: 95_000, records: 950 });
      expect(flood.slice(1)).toEqual(range(1000, 50).map((i) => ({ inIf: i, bytes: 100, records: 1 })));
    } finally {
      db.close();
    }
  }, 60_000);
});
