/**
 * Fireflies end to end through the built daemon: real UDP fireflies (flowd's RFC 5424 framing,
 * XRootD's swapped second copy) -> decode stage -> flow table with site attribution from
 * configured prefixes -> per-bucket sums in SQLite -> GET /api/v1/fireflies.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePorts, freeUdpPort, getJson, startDaemon, waitFor } from '../support/daemon.js';

interface Answer {
  series: {
    group: Record<string, string | number>;
    totals: { flowsStarted: number; flowsEnded: number; bytes: number; durationSeconds: number };
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

describe('fireflies through the built daemon to /api/v1/fireflies', () => {
  it('counts one flow for XRootD’s two copies, attributes both sites, and sums the ended flow', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-ff-api-'));
    const config = join(dir, 'config.yaml');
    // One-second buckets written at once, so the API has the flow a moment after its end.
    writeFileSync(
      config,
      [
        'aggregation:',
        '  bucketSeconds: 1',
        '  graceSeconds: 0',
        '  lateWindowSeconds: 3600',
        'sites:',
        '  prefixes:',
        "    SITE-A: ['2001:db8:1::/48']",
        "    SITE-B: ['2001:db8:2::/48']",
        '',
      ].join('\n'),
    );
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
});
