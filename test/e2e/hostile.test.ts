import { createSocket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { replayDatagrams } from '../../collectors/replay.js';
import { freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { fixturePath } from '../support/expected.js';

interface Exporters {
  exporters: { address: string; datagrams: number; records: number; errorsByReason: Record<string, number> }[];
}

describe('serve under hostile input', () => {
  it('counts typed errors for garbage and cut datagrams, stays up, and still counts good traffic exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-hostile-'));
    const ports = await freePorts();
    const daemon = await startDaemon(ports, [`--store=sqlite:${join(dir, 's.sqlite')}`]);
    try {
      const tx = createSocket('udp4');
      const send = (b: Uint8Array, port: number) => new Promise<void>((r) => tx.send(b, port, '127.0.0.1', () => r()));
      // Garbage: random bytes, and random bodies behind valid version headers of every protocol.
      const garbage = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 1400 }), { numRuns: 300, seed: 42 });
      const prefixes = [Uint8Array.of(0, 10), Uint8Array.of(0, 9), Uint8Array.of(0, 5), Uint8Array.of(0, 0, 0, 5)];
      let sent = 0;
      for (const [i, g] of garbage.entries()) {
        const p = prefixes[i % prefixes.length]!;
        const b = new Uint8Array(p.length + g.length);
        b.set(p);
        b.set(g, p.length);
        await send(i % 2 ? b : g, [ports.ipfix, ports.netflow, ports.sflow][i % 3]!);
        sent++;
      }
      // Every cut of the first datagrams of the sFlow capture.
      const sflow = readCaptureFile(fixturePath('sflow_pmacct_sfprobe_rate1.pcap')).datagrams;
      for (const d of sflow.slice(0, 2)) {
        for (let n = 0; n < d.payload.length; n += 7) {
          await send(d.payload.subarray(0, n), ports.sflow);
          sent++;
        }
      }
      await waitFor(
        async () => (await getJson<Exporters>(`${daemon.apiUrl}/api/v1/exporters`)).exporters.reduce((n, e) => n + e.datagrams, 0) === sent,
      );
      const ex = (await getJson<Exporters>(`${daemon.apiUrl}/api/v1/exporters`)).exporters[0]!;
      const errors = Object.values(ex.errorsByReason).reduce((a, b) => a + b, 0);
      expect(errors).toBeGreaterThanOrEqual(300);
      for (const code of Object.keys(ex.errorsByReason)) expect(code).toMatch(/^[a-z-]+$/);

      // Good traffic afterwards is decoded in full.
      const before = ex.records;
      const ipfix = readCaptureFile(fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap')).datagrams;
      await replayDatagrams(ipfix, { host: '127.0.0.1', port: ports.ipfix, speed: 0, rate: 2000, onlyDstPort: 0 });
      await waitFor(async () => (await getJson<Exporters>(`${daemon.apiUrl}/api/v1/exporters`)).exporters[0]!.records >= before + 43);
      expect((await getJson<Exporters>(`${daemon.apiUrl}/api/v1/exporters`)).exporters[0]!.records).toBe(before + 43);
      const metrics = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
      expect(metrics).toMatch(/scitags_decode_errors_total\{reason="[a-z-]+",exporter="127\.0\.0\.1"\} \d+/);
      tx.close();
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    // The rate limiter keeps the log short however many errors came in.
    expect(daemon.output().split('\n').length).toBeLessThan(60);
  });
});
