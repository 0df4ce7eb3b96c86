import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeReceiveStatus } from '../../collectors/batch-receive.js';
import { readCaptureFile } from '../../collectors/pcap.js';
import { createSocket } from 'node:dgram';
import { freePorts, freeUdpPort, getJson, replayCorpus, startDaemon, waitFor } from '../support/daemon.js';
import {
  addCounts,
  expectedCorpusGroups as expectedGroups,
  type ExpectedCounts,
  expectedTotals,
  fixturePath,
  trafficGroups as groupsOf,
  type TrafficAnswer,
  loadTruth,
} from '../support/expected.js';

describe('serve end to end over loopback', () => {
  it('replayed corpus captures come back from /api/v1/traffic exactly, and survive a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-e2e-'));
    const store = `sqlite:${join(dir, 'scitags.sqlite')}`;
    const ports = await freePorts();
    const t0 = Date.now();
    const daemon = await startDaemon(ports, [`--store=${store}`]);
    await replayCorpus(daemon, ports);
    const exporters = await getJson<{ exporters: { address: string; records: number; protocols: string[]; errorsByReason: object }[] }>(
      `${daemon.apiUrl}/api/v1/exporters`,
    );
    expect(exporters.exporters).toHaveLength(1);
    expect(exporters.exporters[0]).toMatchObject({
      address: '127.0.0.1',
      records: 43 + 43 + 1448,
      protocols: ['ipfix', 'sflow'],
      errorsByReason: {},
      // pmacct sfprobe: one flow source 0:1 at rate 1, and sample_pool grows by one per sample
      sflowSources: [{ subAgent: 7, sourceIdType: 0, sourceIdIndex: 1, samplingRate: 1, effectiveRate: 1, drops: 0, lostSamples: 0 }],
    });
    const health = await fetch(`${daemon.apiUrl}/health`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
    expect(metrics).toContain(`scitags_datagrams_received_total{listener="ipfix",exporter="127.0.0.1"} 12`);
    expect(metrics).toContain(`scitags_datagrams_received_total{listener="sflow",exporter="127.0.0.1"} 235`);
    expect(metrics).toContain(`scitags_records_decoded_total{protocol="ipfix",exporter="127.0.0.1"} 86`);
    expect(metrics).toContain(`scitags_records_decoded_total{protocol="sflow",exporter="127.0.0.1"} 1448`);
    // Kernel drops on our own sockets, read from /proc/net/udp at scrape time (none here).
    expect(metrics).toContain(`scitags_kernel_udp_drops_total{listener="ipfix",port="${ports.ipfix}"} 0`);
    expect(metrics).toContain(`scitags_kernel_udp_drops_total{listener="sflow",port="${ports.sflow}"} 0`);
    expect(metrics).toContain('scitags_queue_length 0');
    // The receive path in use and the buffer granted (the batched addon is mandatory under CI: batch-receive.test.ts).
    const path = nativeReceiveStatus().available ? 'recvmmsg' : 'dgram';
    expect(metrics).toMatch(
      new RegExp(`scitags_receive_path_info\\{listener="ipfix",port="${ports.ipfix}",path="${path}",reason="[^"]*"\\} 1`),
    );
    expect(metrics).toMatch(new RegExp(`scitags_socket_receive_buffer_bytes\\{listener="sflow",port="${ports.sflow}"\\} [1-9]\\d+`));
    expect(metrics).toMatch(/scitags_decode_workers [1-9]/);

    // SIGTERM: drain, flush every open bucket, exit 0.
    expect(await daemon.stop('SIGTERM')).toBe(0);

    const again = await startDaemon(await freePorts(), [`--store=${store}`]);
    try {
      const from = Math.floor(t0 / 1000) - 3600;
      const to = from + 3 * 3600;
      const answer = await getJson<TrafficAnswer>(
        `${again.apiUrl}/api/v1/traffic?from=${from}&to=${to}&step=3h&groupBy=community,activity`,
      );
      expect(groupsOf(answer)).toEqual(expectedGroups());
    } finally {
      expect(await again.stop('SIGINT')).toBe(0);
    }
  });
});

describe('templates survive a restart of the collector', () => {
  it('data sent after a restart, before any template refresh, is decoded with the saved templates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-state-'));
    const store = `--store=sqlite:${join(dir, 'scitags.sqlite')}`;
    const dgrams = readCaptureFile(fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap')).datagrams;
    const sourcePort = await freeUdpPort();
    // The exporter keeps its transport session (source port) across our restart.
    const sendFromExporter = async (payloads: Uint8Array[], port: number): Promise<void> => {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind(sourcePort, '127.0.0.1', () => r()));
      for (const p of payloads) await new Promise<void>((r) => s.send(p, port, '127.0.0.1', () => r()));
      await new Promise<void>((r) => s.close(() => r()));
    };
    const decoded = async (d: { apiUrl: string }, n: number) =>
      waitFor(
        async () => (await getJson<{ exporters: { datagrams: number }[] }>(`${d.apiUrl}/api/v1/exporters`)).exporters[0]?.datagrams === n,
      );

    const portsA = await freePorts();
    const a = await startDaemon(portsA, [store], {}, dir);
    await sendFromExporter([dgrams[0]!.payload], portsA.ipfix); // the templates (and first records)
    await decoded(a, 1);
    expect(await a.stop()).toBe(0);

    const portsB = await freePorts();
    const b = await startDaemon(portsB, [store], {}, dir);
    expect(b.output()).toMatch(/restored templates of 1 exporter sessions/);
    await sendFromExporter(
      dgrams.slice(1).map((d) => d.payload),
      portsB.ipfix,
    );
    await decoded(b, dgrams.length - 1);
    const metrics = await (await fetch(`${b.apiUrl}/metrics`)).text();
    expect(metrics).not.toMatch(/scitags_template_misses_total\{[^}]*\} [1-9]/);
    expect(await b.stop()).toBe(0);

    const c = await startDaemon(await freePorts(), [store], {}, dir);
    try {
      const from = Math.floor(Date.now() / 1000) - 3600;
      const answer = await getJson<TrafficAnswer>(`${c.apiUrl}/api/v1/traffic?from=${from}&to=now&step=1h&groupBy=class`);
      const t = expectedTotals(loadTruth(fixturePath('ipfix_pmacct_nfprobe_flowlabel.truth.json')));
      const marked = [...t.pairs.values()].reduce((acc, x) => addCounts(acc, x), undefined as ExpectedCounts | undefined)!;
      expect(groupsOf(answer)).toEqual(
        new Map([
          ['ipv6_unmarked', t.ipv6Unmarked],
          ['ipv4', t.ipv4],
        ]).set('scitags undefined/undefined', marked),
      );
    } finally {
      await c.stop();
    }
  });
});
