import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.js';
import { type Daemon, freePorts, getJson, replayCorpus, startDaemon, waitFor } from '../support/daemon.js';
import { addCounts, expectedCorpusGroups, type ExpectedCounts, trafficGroups, type TrafficAnswer } from '../support/expected.js';
import { PROM_CLIENT_LINT, promtool, promtoolAvailable } from '../support/promtool.js';

/**
 * Prometheus-first operation against the real daemon: the corpus captures replayed over
 * loopback, then /metrics. The traffic counters must equal what /api/v1/traffic reports
 * from the store (and the truth files) exactly, per experiment and per link; the exposition
 * must pass `promtool check metrics`.
 */

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Bytes and packets of the traffic counters summed by `key` over the samples `keep` selects. */
function sumTraffic(samples: Sample[], keep: (l: Record<string, string>) => boolean, key: (l: Record<string, string>) => string) {
  const out = new Map<string, { bytes: number; packets: number }>();
  for (const s of samples) {
    const field = s.name === 'scitags_traffic_bytes_total' ? 'bytes' : s.name === 'scitags_traffic_packets_total' ? 'packets' : undefined;
    if (!field || !keep(s.labels)) continue;
    const k = key(s.labels);
    const v = out.get(k) ?? { bytes: 0, packets: 0 };
    v[field] += s.value;
    out.set(k, v);
  }
  return out;
}

const bytesAndPackets = (m: Map<string, ExpectedCounts>) => new Map([...m].map(([k, v]) => [k, { bytes: v.bytes, packets: v.packets }]));

describe('Prometheus exposition of a running daemon after traffic', () => {
  let daemon: Daemon;
  let t0: number;
  let text: string;
  let api: string;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-prom-'));
    // One-second buckets written at once: the store (and so the API) has everything a moment
    // after the last datagram, while the daemon is still running to be scraped.
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'aggregation:\n  bucketSeconds: 1\n  graceSeconds: 0\n  lateWindowSeconds: 3600\n');
    const ports = await freePorts();
    t0 = Date.now();
    daemon = await startDaemon(ports, [`--config=${config}`, `--store=sqlite:${join(dir, 'scitags.sqlite')}`]);
    await replayCorpus(daemon, ports);
    const from = Math.floor(t0 / 1000) - 3600;
    api = `${daemon.apiUrl}/api/v1/traffic?from=${from}&to=${from + 3 * 3600}&step=3h`;
    // Every bucket written: the API's totals are the truth's.
    const expected = expectedCorpusGroups();
    await waitFor(async () => {
      const got = trafficGroups(await getJson<TrafficAnswer>(`${api}&groupBy=community,activity`));
      return JSON.stringify([...got].sort()) === JSON.stringify([...expected].sort());
    });
    text = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
  }, 60_000);

  afterAll(async () => {
    if (daemon) expect(await daemon.stop()).toBe(0);
  });

  it('counts traffic per experiment and activity exactly as /api/v1/traffic and the truth files', async () => {
    const samples = parseExposition(text);
    const byPair = (l: Record<string, string>) => (l.class === 'scitags' ? `scitags ${l.community}/${l.activity}` : l.class!);
    // Each byte counts once per direction: either direction alone gives the totals.
    for (const direction of ['in', 'out']) {
      const got = sumTraffic(samples, (l) => l.direction === direction, byPair);
      expect(got).toEqual(bytesAndPackets(expectedCorpusGroups()));
      expect(got).toEqual(bytesAndPackets(trafficGroups(await getJson<TrafficAnswer>(`${api}&groupBy=community,activity`))));
    }
    expect(samples.find((s) => s.name === 'scitags_traffic_series_folded_total')?.value).toBe(0);
  });

  it('counts traffic per exporter, link and direction exactly as /api/v1/traffic', async () => {
    const answer = await getJson<TrafficAnswer>(`${api}&groupBy=exporter,link,direction`);
    const fromApi = new Map<string, ExpectedCounts>();
    for (const s of answer.series) {
      const g = s.group;
      const link = g.linkName ?? (g.linkIfIndex === null ? 'none' : String(g.linkIfIndex));
      const k = `${g.exporter} ${link} ${g.direction}`;
      fromApi.set(k, addCounts(fromApi.get(k), s.totals));
    }
    expect(fromApi.size).toBeGreaterThan(2);
    const got = sumTraffic(
      parseExposition(text),
      () => true,
      (l) => `${l.exporter} ${l.link} ${l.direction}`,
    );
    expect(got).toEqual(bytesAndPackets(fromApi));
  });

  it('exposes build info, exporter last-seen, the receive buffer and the process / Node.js defaults', () => {
    const samples = parseExposition(text);
    const one = (name: string) => samples.filter((s) => s.name === name);
    expect(one('scitags_build_info')).toEqual([
      { name: 'scitags_build_info', labels: { version: VERSION, node: process.version }, value: 1 },
    ]);
    // Store writes happened (the API has every bucket): each attempt is timed, one count per attempt.
    const writeCount = one('scitags_store_write_seconds_count');
    expect(writeCount.map((s) => s.labels)).toEqual([{ store: 'sqlite' }]);
    expect(writeCount[0]!.value).toBeGreaterThan(0);
    const seen = one('scitags_exporter_last_seen_seconds');
    expect(seen.map((s) => s.labels)).toEqual([{ exporter: '127.0.0.1' }]);
    expect(seen[0]!.value * 1000).toBeGreaterThanOrEqual(t0);
    expect(seen[0]!.value * 1000).toBeLessThanOrEqual(Date.now());
    expect(
      one('scitags_socket_receive_buffer_bytes')
        .map((s) => s.labels.listener)
        .sort(),
    ).toEqual(['ipfix', 'netflow', 'sflow']);
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(one(name), name).toHaveLength(1);
    }
    // The SQLite store has no spool.
    expect(samples.some((s) => s.name.startsWith('scitags_influx_'))).toBe(false);
  });

  it.skipIf(!promtoolAvailable('promtool check metrics of /metrics'))(
    "passes promtool check metrics (only prom-client's own naming findings)",
    () => {
      const r = promtool(['check', 'metrics'], text);
      // 3: lint findings only (parse errors exit 1). Every finding must be a known prom-client one.
      expect(
        r.output
          .split('\n')
          .filter((l) => l.trim() !== '')
          .sort(),
      ).toEqual([...PROM_CLIENT_LINT]);
      expect(r.status).toBe(3);
    },
  );
});
