import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { replayDatagrams } from '../../collectors/replay.js';
import type { Decoder } from '../../decoders/decoder.js';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { captureLog } from '../support/logs.js';
import { protocolTable } from '../../src/pipeline/protocols.js';
import { Collector } from '../../src/serve/collector.js';
import { freeUdpPort, getJson, waitFor } from '../support/daemon.js';
import { freeTcpPort } from '../support/influxd.js';
import { addCounts, type ExpectedCounts, expectedTotals, fixturePath, loadTruth } from '../support/expected.js';

interface Totals {
  bytes: number;
  packets: number;
  records: number;
}

describe('crash isolation', () => {
  it('a decoder that throws for one exporter is counted and kept as a fixture; every other exporter is counted exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-crash-'));
    const [ipfixPort, sflowPort, apiPort] = [await freeUdpPort(), await freeUdpPort(), await freeTcpPort()];
    const config = configSchema.parse({
      dataDir: dir,
      listeners: {
        ipfix: [{ port: ipfixPort, bind: '127.0.0.1' }],
        netflow: [{ port: 0 }],
        sflow: [{ port: sflowPort, bind: '127.0.0.1' }],
        firefly: [{ port: 0 }],
      },
      api: { port: apiPort, bind: '127.0.0.1' },
      store: { type: 'sqlite', path: join(dir, 'scitags.sqlite') },
      registry: { url: '', cacheFile: join(dir, 'registry-cache.json') },
      decoder: { stateFile: '', crashDir: join(dir, 'crashes'), workers: 1 },
    });
    // The real table, with the flow decoder wrapped so that it throws (a TypeError, as a bug
    // would) for every datagram sent from 127.0.0.3 after handing over its first record.
    const table = protocolTable({ flow: {} });
    const flow = table[1]!;
    const real = flow.decoder;
    const buggy: Decoder<unknown> = {
      name: real.name,
      createState: () => real.createState(),
      decode(payload, ctx, state, opts, sink) {
        if (ctx.exporterAddr !== '127.0.0.3') return real.decode(payload, ctx, state, opts, sink);
        const undef = undefined as unknown as { boom: () => void };
        undef.boom();
        throw new Error('unreachable');
      },
    };
    table[1] = { ...flow, decoder: buggy };
    const { log, lines } = captureLog('warn');
    const collector = await Collector.create(config, { now: Date.now, log, protocols: table });
    await collector.start();
    const t0 = Date.now();
    try {
      const ipfix = readCaptureFile(fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap')).datagrams;
      const sflow = readCaptureFile(fixturePath('sflow_pmacct_sfprobe_rate1.pcap')).datagrams;
      const send = (datagrams: typeof ipfix, port: number, from: string): Promise<unknown> =>
        replayDatagrams(
          datagrams.map((d) => ({ ...d, srcAddr: from })),
          { host: '127.0.0.1', port, speed: 0, rate: 5000, onlyDstPort: 0, bindAddress: from },
        );
      await send(ipfix, ipfixPort, '127.0.0.3'); // the crashing exporter
      await send(ipfix, ipfixPort, '127.0.0.2');
      await send(sflow, sflowPort, '127.0.0.4');
      type Ex = {
        address: string;
        datagrams: number;
        records: number;
        errorsByReason: Record<string, number>;
        decoderCrashes: Record<string, number>;
      };
      const all = ipfix.length * 2 + sflow.length;
      await waitFor(
        async () =>
          (await getJson<{ exporters: Ex[] }>(`${collector.apiUrl}/api/v1/exporters`)).exporters.reduce((n, e) => n + e.datagrams, 0) ===
          all,
      );
      const { exporters } = await getJson<{ exporters: Ex[] }>(`${collector.apiUrl}/api/v1/exporters`);
      const by = new Map(exporters.map((e) => [e.address, e]));
      // truth (corpus README, tshark): ipfix_pmacct_nfprobe_flowlabel is 9 datagrams with 43 records; the sFlow capture 235 datagrams with 1448 samples
      expect(by.get('127.0.0.3')).toMatchObject({
        datagrams: 9,
        records: 0,
        errorsByReason: { 'decoder-crash': 9 },
        decoderCrashes: { flow: 9 },
      });
      expect(by.get('127.0.0.2')).toMatchObject({ datagrams: 9, records: 43, errorsByReason: {}, decoderCrashes: {} });
      expect(by.get('127.0.0.4')).toMatchObject({ datagrams: 235, records: 1448, errorsByReason: {}, decoderCrashes: {} });
      const metrics = await (await fetch(`${collector.apiUrl}/metrics`)).text();
      expect(metrics).toContain('scitags_decoder_crashes_total{decoder="flow",exporter="127.0.0.3"} 9');
      expect(metrics).toContain('scitags_decode_errors_total{reason="decoder-crash",exporter="127.0.0.3"} 9');
      // One log line with the stack (rate-limited), not twelve.
      const crashes = lines.filter((l) => l.msg.includes('decoder flow crashed'));
      expect(crashes).toHaveLength(1);
      expect(crashes[0]!.msg).toMatch(/TypeError: Cannot read properties of undefined/);
      expect(crashes[0]).toMatchObject({ level: 'error', component: 'decode', decoder: 'flow', exporter: '127.0.0.3' });
      // Every crashing datagram kept as a fixture: the payload and what happened.
      const files = readdirSync(join(dir, 'crashes')).sort();
      expect(files.filter((f) => f.endsWith('.bin'))).toHaveLength(9);
      const meta = JSON.parse(
        readFileSync(
          join(
            dir,
            'crashes',
            files.find((f) => f.endsWith('.json'))!,
          ),
          'utf8',
        ),
      ) as Record<string, unknown>;
      expect(meta).toMatchObject({ decoder: 'flow', exporter: '127.0.0.3' });
      const firstBin = files.find((f) => f.endsWith('.bin'))!;
      expect(ipfix.some((d) => Buffer.compare(Buffer.from(d.payload), readFileSync(join(dir, 'crashes', firstBin))) === 0)).toBe(true);
    } finally {
      await collector.stop();
    }
    // Totals of the two healthy exporters are exactly their truth; the crashing one wrote nothing.
    // A fresh API port: the client's pooled connection to the first one is closed.
    const again = await Collector.create(
      { ...config, api: { ...config.api, port: await freeTcpPort() }, listeners: { ipfix: [], netflow: [], sflow: [], firefly: [] } },
      { now: Date.now, log: silentLogger() },
    );
    await again.start();
    try {
      const from = Math.floor(t0 / 1000) - 3600;
      const q = `${again.apiUrl}/api/v1/traffic?from=${from}&to=${from + 3 * 3600}&step=3h&groupBy=exporter`;
      const answer = await getJson<{ series: { group: { exporter: string }; totals: Totals }[] }>(q);
      const byExporter = new Map(answer.series.map((s) => [s.group.exporter, s.totals]));
      const sum = (name: string): ExpectedCounts => {
        const t = expectedTotals(loadTruth(fixturePath(`${name}.truth.json`)));
        return [...t.pairs.values(), t.ipv6Unmarked, t.ipv4].reduce((a, b) => addCounts(a, b), undefined as ExpectedCounts | undefined)!;
      };
      expect(byExporter.get('127.0.0.2')).toMatchObject(sum('ipfix_pmacct_nfprobe_flowlabel'));
      expect(byExporter.get('127.0.0.4')).toMatchObject(sum('sflow_pmacct_sfprobe_rate1'));
      expect(byExporter.has('127.0.0.3')).toBe(false);
    } finally {
      await again.stop();
    }
    expect(existsSync(join(dir, 'crashes'))).toBe(true);
  });
});
