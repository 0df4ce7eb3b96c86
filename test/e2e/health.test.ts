import { describe, expect, it } from 'vitest';
import { freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { freeTcpPort } from '../support/influxd.js';

interface Health {
  status: string;
  reasons: { reason: string; metric: string; detail: string }[];
}

describe('/health reasons', () => {
  it('a registry that fails for longer than its refresh interval degrades /health, naming the metric; strict mode answers 503', async () => {
    const ports = await freePorts();
    const dead = await freeTcpPort(); // nothing listens there: connection refused
    const d = await startDaemon(ports, ['--store=sqlite::memory:', '--workers=1', '--registry-refresh-seconds=1', '--health-strict'], {
      SCITAGS_REGISTRY_URL: `http://127.0.0.1:${dead}/api.json`,
    });
    try {
      let health: Health | undefined;
      await waitFor(async () => {
        const res = await fetch(`${d.apiUrl}/health`);
        health = (await res.json()) as Health;
        return res.status === 503 && health.status === 'degraded';
      }, 10_000);
      expect(health!.reasons.map((r) => [r.reason, r.metric])).toEqual([['registry_refresh_failing', 'scitags_registry_last_refresh_ok']]);
      expect(health!.reasons[0]!.detail).toContain('using the snapshot copy');
      expect((await fetch(`${d.apiUrl}/health?strict=0`)).status).toBe(200);
      expect((await getJson<{ status: string }>(`${d.apiUrl}/health?strict=false`)).status).toBe('degraded');
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });
});
