import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { replayDatagrams } from '../../collectors/replay.js';
import { estimateLoss, RUN_MARKER_FILE, type RunMarkerState } from '../../src/serve/run-marker.js';
import { freePorts, getJson, metricValue, startDaemon, waitFor } from '../support/daemon.js';
import { fixturePath } from '../support/expected.js';

interface Health {
  status: string;
  reasons: { reason: string; metric: string; detail: string }[];
}

describe('unclean shutdown', () => {
  it('kill -9 with records in open buckets: the next start logs the loss once, counts it and shows it in /health; a clean stop leaves no marker', async () => {
    const ports = await freePorts();
    const args = ['--store=sqlite:scitags.sqlite', '--workers=1'];
    const first = await startDaemon(ports, args);
    const marker = join(first.cwd, 'data', RUN_MARKER_FILE);
    const cap = readCaptureFile(fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap'));
    await replayDatagrams(cap.datagrams, { host: '127.0.0.1', port: ports.ipfix, speed: 0, rate: 5000, onlyDstPort: 0 });
    await waitFor(async () => {
      const ex = await getJson<{ exporters: { datagrams: number }[] }>(`${first.apiUrl}/api/v1/exporters`);
      return ex.exporters.reduce((n, e) => n + e.datagrams, 0) === cap.datagrams.length;
    });
    // The heartbeat (once a second) has seen the records waiting in memory.
    await waitFor(async () => Promise.resolve((JSON.parse(readFileSync(marker, 'utf8')) as RunMarkerState).pending));
    expect(await first.stop('SIGKILL')).toBe(null);
    const left = JSON.parse(readFileSync(marker, 'utf8')) as RunMarkerState;
    const expected = estimateLoss(left);
    expect(expected.bucketsLost).toBeGreaterThanOrEqual(1);

    const second = await startDaemon(ports, args, {}, first.cwd);
    try {
      const warned = second
        .output()
        .split('\n')
        .filter((l) => l.includes('did not stop cleanly'));
      expect(warned).toHaveLength(1);
      expect(JSON.parse(warned[0]!)).toMatchObject({
        level: 'warn',
        bucketsLost: expected.bucketsLost,
        fromMs: expected.fromMs,
        toMs: expected.toMs,
      });
      const metrics = await (await fetch(`${second.apiUrl}/metrics`)).text();
      expect(metricValue(metrics, 'scitags_unclean_shutdowns_total')).toBe(1);
      expect(metricValue(metrics, 'scitags_buckets_lost_unclean_total')).toBe(expected.bucketsLost);
      const health = await getJson<Health>(`${second.apiUrl}/health`);
      expect(health.status).toBe('degraded');
      expect(health.reasons.map((r) => [r.reason, r.metric])).toEqual([['unclean_shutdown', 'scitags_buckets_lost_unclean_total']]);
    } finally {
      expect(await second.stop('SIGTERM')).toBe(0);
    }
    expect(existsSync(marker)).toBe(false);
    const third = await startDaemon(ports, args, {}, first.cwd);
    try {
      expect(third.output()).not.toContain('did not stop cleanly');
      expect((await getJson<Health>(`${third.apiUrl}/health`)).status).toBe('ok');
    } finally {
      expect(await third.stop('SIGTERM')).toBe(0);
    }
  });
});
