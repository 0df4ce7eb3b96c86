import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { fixturePath } from '../support/expected.js';

interface Health {
  status: string;
  reasons: { reason: string; metric: string; detail: string }[];
}

describe('kernel drops in /health', () => {
  it('a burst into a tiny receive buffer: kernel drops over health.maxDropFraction of the last minute degrade /health, naming the metric', async () => {
    const ports = await freePorts();
    const cwd = mkdtempSync(join(tmpdir(), 'scitags-drops-'));
    // The smallest receive buffer the kernel grants (it doubles and floors the request).
    writeFileSync(
      join(cwd, 'config.yaml'),
      `listeners:\n  ipfix: [{port: ${ports.ipfix}, bind: 127.0.0.1, receiveBufferBytes: 1024}]\nstore: {type: sqlite, path: ':memory:'}\n`,
    );
    const d = await startDaemon(ports, ['--config=config.yaml', '--workers=1'], {}, cwd);
    try {
      expect((await getJson<Health>(`${d.apiUrl}/health`)).status).toBe('ok');
      const datagrams = readCaptureFile(fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap')).datagrams;
      const sock = createSocket('udp4');
      // 50,000 datagrams as fast as the sender goes, without waiting for the receiver.
      for (let i = 0; i < 50_000; i++) {
        const dg = datagrams[i % datagrams.length]!;
        sock.send(dg.payload, ports.ipfix, '127.0.0.1');
        if (i % 2000 === 1999) await new Promise((r) => setImmediate(r));
      }
      await new Promise<void>((r) => sock.close(() => r()));
      let health: Health | undefined;
      await waitFor(async () => {
        health = await getJson<Health>(`${d.apiUrl}/health`);
        return health.reasons.some((r) => r.reason === 'kernel_drops');
      }, 10_000);
      const reason = health!.reasons.find((r) => r.reason === 'kernel_drops')!;
      expect(health!.status).toBe('degraded');
      expect(reason.metric).toBe('scitags_kernel_udp_drops_total');
      console.log(`kernel drops reason: ${reason.detail}`);
      expect((await fetch(`${d.apiUrl}/health?strict=1`)).status).toBe(503);
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });
});
