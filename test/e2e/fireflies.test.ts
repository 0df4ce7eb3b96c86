/**
 * Fireflies into a running collector over real loopback sockets: UDP in every framing seen
 * in the field, malformed ones counted per exporter and reason (/api/v1/exporters,
 * /metrics), TCP syslog in both RFC 6587 framings, forwarding of accepted fireflies (exact
 * bytes, rate limit, never the refused ones) to a local UDP sink, and the 10,000 real 2022
 * fireflies replayed over UDP through decode workers.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayDatagrams } from '../../collectors/replay.js';
import type { Firefly } from '../../decoders/firefly/types.js';
import { FIREFLY_MAX_BYTES } from '../../decoders/firefly/parse.js';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { Collector } from '../../src/serve/collector.js';
import { freePorts, freeUdpPort, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { asSent, EXPECTED_2022, readFireflies2022 } from '../support/fireflies-2022.js';
import { freeTcpPort } from '../support/influxd.js';

interface Received {
  f: Firefly;
  exporter: string;
}

async function startCollector(
  opts: {
    forward?: string[];
    maxPerSecond?: number;
    workers?: number;
    now?: () => number;
    syslog?: { maxConnections: number; idleTimeoutSeconds: number };
    allow?: string[];
  } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'scitags-firefly-'));
  const port = await freeUdpPort();
  const config = configSchema.parse({
    dataDir: dir,
    listeners: { ipfix: [{ port: 0 }], netflow: [{ port: 0 }], sflow: [{ port: 0 }], firefly: [{ port, bind: '127.0.0.1' }] },
    api: { port: await freeTcpPort(), bind: '127.0.0.1' },
    store: { type: 'sqlite', path: join(dir, 'scitags.sqlite') },
    registry: { url: '', cacheFile: join(dir, 'registry-cache.json') },
    decoder: { stateFile: '', crashDir: '', workers: opts.workers ?? 1 },
    forward: { fireflies: opts.forward ?? [], maxPerSecond: opts.maxPerSecond ?? 1000 },
    ...(opts.syslog ? { syslog: opts.syslog } : {}),
    ...(opts.allow ? { exporters: { allow: opts.allow } } : {}),
  });
  const received: Received[] = [];
  const collector = await Collector.create(config, {
    now: opts.now ?? Date.now,
    log: silentLogger(),
    apiTokens: [],
    fireflySink: { accept: (f, _ms, exporter) => void received.push({ f, exporter }) },
  });
  await collector.start();
  return { collector, port, received };
}

async function sendUdp(port: number, messages: (string | Uint8Array)[]): Promise<void> {
  const s = createSocket('udp4');
  for (const m of messages) {
    await new Promise<void>((resolve, reject) =>
      s.send(typeof m === 'string' ? Buffer.from(m) : m, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())),
    );
  }
  s.close();
}

interface Ex {
  address: string;
  protocols: string[];
  datagrams: number;
  records: number;
  errorsByReason: Record<string, number>;
}
const exporters = async (c: Collector): Promise<Ex[]> => {
  await c.stage.refresh();
  return (await getJson<{ exporters: Ex[] }>(`${c.apiUrl}/api/v1/exporters`)).exporters;
};

const json = (state: string, extra = '', afi = 'ipv6', src = '2001:db8::1', dst = '2001:db8::2'): string =>
  `{"version":1,"flow-lifecycle":{"state":"${state}","start-time":"2024-03-28T08:58:48Z"${extra}},` +
  `"flow-id":{"afi":"${afi}","src-ip":"${src}","dst-ip":"${dst}","protocol":"tcp","src-port":1094,"dst-port":40000},` +
  `"context":{"experiment-id":2,"activity-id":3}}`;
const END = ',"end-time":"2024-03-28T09:00:00Z"';

const VALID = [
  `<134>1 2024-03-28T08:58:48.899646+00:00 flowd.example flowd - firefly-json - ${json('start')}`,
  `<134>1 - xrd.example xrootd - firefly-json - ${json('ongoing')}`,
  json('end', END, 'ipv4', '192.0.2.1', '198.51.100.2'),
  `Feb  1 18:54:27 relay 1 2024-03-28T08:58:48Z dcache.example dcache - firefly-json - ${json('start')}`,
];

describe('fireflies into a running collector', () => {
  it('UDP in every framing; malformed ones counted by reason, never handed on', async () => {
    const { collector, port, received } = await startCollector();
    try {
      const malformed = [
        '<134>1 - h x - firefly-json - {"version": 1,', // not-json
        json('end'), // schema: end without end-time
        'Feb  1 18:56:51 relay syslog-ng[15]: Log statistics; processed=1', // not-firefly
        `${json('start')}${' '.repeat(FIREFLY_MAX_BYTES)}`, // too-large
        Uint8Array.from([0x7b, 0xff, 0x7d]), // not-utf8
      ];
      await sendUdp(port, [...VALID, ...malformed]);
      await waitFor(async () => (await exporters(collector)).some((e) => e.datagrams === 9));
      const ex = (await exporters(collector)).find((e) => e.address === '127.0.0.1');
      expect(ex).toMatchObject({
        protocols: ['firefly'],
        datagrams: 9,
        records: 4,
        errorsByReason: { 'not-json': 1, schema: 1, 'not-firefly': 1, 'too-large': 1, 'not-utf8': 1 },
      });
      expect(received.map((r) => [r.f.framing, r.f.state, r.f.host, r.f.appName, r.f.ipVersion, r.exporter])).toEqual([
        ['rfc5424', 'start', 'flowd.example', 'flowd', 6, '127.0.0.1'],
        ['rfc5424-no-time', 'ongoing', 'xrd.example', 'xrootd', 6, '127.0.0.1'],
        ['bare', 'end', undefined, undefined, 4, '127.0.0.1'],
        ['relay', 'start', 'dcache.example', 'dcache', 6, '127.0.0.1'],
      ]);
      expect(collector.fireflyIntake.accepted).toEqual({ start: 2, ongoing: 1, end: 1 });
      const metrics = await (await fetch(`${collector.apiUrl}/metrics`)).text();
      expect(metrics).toContain('scitags_fireflies_accepted_total{state="start"} 2');
      expect(metrics).toContain('scitags_fireflies_accepted_total{state="end"} 1');
      expect(metrics).toContain('scitags_records_decoded_total{protocol="firefly",exporter="127.0.0.1"} 4');
      expect(metrics).toContain('scitags_decode_errors_total{reason="schema",exporter="127.0.0.1"} 1');
      expect(metrics).toContain('scitags_decode_errors_total{reason="too-large",exporter="127.0.0.1"} 1');
    } finally {
      await collector.stop();
    }
  }, 30_000);

  it('TCP syslog on the same port: octet counting and LF framing, an oversized message counted', async () => {
    const { collector, port, received } = await startCollector();
    try {
      const octet = (m: string): string => `${Buffer.byteLength(m)} ${m}`;
      const stream =
        octet(VALID[0]!) +
        octet(VALID[1]!) +
        `${VALID[2]!}\n${VALID[3]!}\r\n` +
        `${'{'.repeat(FIREFLY_MAX_BYTES + 10)}\n` +
        octet(json('end'));
      await new Promise<void>((resolve, reject) => {
        const s = connect({ port, host: '127.0.0.1' }, () => {
          // In pieces of 100 bytes: frames cross chunk boundaries as relays' writes do.
          for (let i = 0; i < stream.length; i += 100) s.write(stream.slice(i, i + 100));
          s.end();
        });
        s.on('error', reject);
        s.on('close', () => resolve());
      });
      await waitFor(async () => (await exporters(collector)).some((e) => e.datagrams === 6));
      const ex = (await exporters(collector)).find((e) => e.address === '127.0.0.1');
      expect(ex).toMatchObject({ datagrams: 6, records: 4, errorsByReason: { 'too-large': 1, schema: 1 } });
      expect(received.map((r) => [r.f.framing, r.f.state, r.f.host])).toEqual([
        ['rfc5424', 'start', 'flowd.example'],
        ['rfc5424-no-time', 'ongoing', 'xrd.example'],
        ['bare', 'end', undefined],
        ['relay', 'start', 'dcache.example'],
      ]);
      const tcp = collector.syslogListeners[0]!.listener.stats;
      expect(tcp).toMatchObject({ connections: 1, refused: 0, framingErrors: 0, messages: 6, oversized: 1 });
      const metrics = await (await fetch(`${collector.apiUrl}/metrics`)).text();
      expect(metrics).toContain('scitags_syslog_tcp_connections_total{listener="firefly-tcp",outcome="accepted"} 1');
      expect(metrics).toContain('scitags_syslog_tcp_messages_total{listener="firefly-tcp"} 6');
    } finally {
      await collector.stop();
    }
  }, 30_000);

  it('TCP limits: connections over syslog.maxConnections refused, an idle one closed, an unreadable octet count closes, senders outside exporters.allow denied', async () => {
    const { collector, port, received } = await startCollector({ syslog: { maxConnections: 1, idleTimeoutSeconds: 1 } });
    const closed = (s: ReturnType<typeof connect>): Promise<void> => new Promise((resolve) => s.on('close', () => resolve()));
    try {
      const first = connect({ port, host: '127.0.0.1' });
      first.on('error', () => {});
      await new Promise<void>((resolve) => first.on('connect', () => resolve()));
      await waitFor(() => Promise.resolve(collector.syslogListeners[0]!.listener.openConnections === 1));
      const second = connect({ port, host: '127.0.0.1' });
      second.on('error', () => {});
      await closed(second);
      // The first one sends nothing: closed by the idle timeout.
      await closed(first);
      const bad = connect({ port, host: '127.0.0.1' }, () => void bad.write(`12x${VALID[2]!}\n`));
      bad.on('error', () => {});
      await closed(bad);
      expect(collector.syslogListeners[0]!.listener.stats).toMatchObject({
        connections: 2,
        refused: 1,
        idleTimeouts: 1,
        framingErrors: 1,
        messages: 0,
      });
      expect(received).toEqual([]);
      const metrics = await (await fetch(`${collector.apiUrl}/metrics`)).text();
      expect(metrics).toContain('scitags_syslog_tcp_connections_total{listener="firefly-tcp",outcome="refused"} 1');
      expect(metrics).toContain('scitags_syslog_tcp_closed_total{listener="firefly-tcp",reason="idle"} 1');
      expect(metrics).toContain('scitags_syslog_tcp_closed_total{listener="firefly-tcp",reason="framing-error"} 1');
    } finally {
      await collector.stop();
    }
    const denied = await startCollector({ allow: ['192.0.2.0/24'] });
    try {
      const s = connect({ port: denied.port, host: '127.0.0.1' }, () => void s.write(`${VALID[2]!}\n`));
      s.on('error', () => {});
      await closed(s);
      expect(denied.collector.syslogListeners[0]!.listener.stats).toMatchObject({ connections: 0, deniedByAllowList: 1, messages: 0 });
      expect(denied.received).toEqual([]);
    } finally {
      await denied.collector.stop();
    }
  }, 30_000);

  it('forwards accepted fireflies byte for byte, up to the per-destination rate; refused ones never', async () => {
    const sink = createSocket('udp4');
    const got: Buffer[] = [];
    sink.on('message', (m) => got.push(m));
    await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', () => resolve()));
    const sinkPort = sink.address().port;
    // A clock that never moves: the bucket holds maxPerSecond tokens and never refills, so
    // exactly the first 3 accepted fireflies go out whatever the test machine's speed.
    const t0 = Date.UTC(2024, 2, 28, 9);
    const { collector, port } = await startCollector({
      forward: [`127.0.0.1:${sinkPort}`, `[::1]:${sinkPort}`],
      maxPerSecond: 3,
      now: () => t0,
    });
    try {
      const sent = [VALID[0]!, 'not a firefly', VALID[1]!, json('end'), VALID[2]!, VALID[3]!, VALID[0]!];
      await sendUdp(port, sent);
      await waitFor(async () => (await exporters(collector)).some((e) => e.datagrams === 7));
      await waitFor(() => Promise.resolve(collector.forwarder.stats()[0]!.forwarded === 3));
      // The [::1] destination: the sink listens on IPv4 only, so its sends fail or vanish; counted either way.
      expect(collector.forwarder.stats()[0]).toEqual({ destination: `127.0.0.1:${sinkPort}`, forwarded: 3, rateLimited: 2, sendErrors: 0 });
      expect(collector.forwarder.stats()[1]).toMatchObject({ destination: `[::1]:${sinkPort}`, rateLimited: 2 });
      await waitFor(() => Promise.resolve(got.length >= 3));
      expect(got.map((b) => b.toString())).toEqual([VALID[0], VALID[1], VALID[2]]);
      const metrics = await (await fetch(`${collector.apiUrl}/metrics`)).text();
      expect(metrics).toContain(`scitags_firefly_forwards_total{destination="127.0.0.1:${sinkPort}",outcome="forwarded"} 3`);
      expect(metrics).toContain(`scitags_firefly_forwards_total{destination="127.0.0.1:${sinkPort}",outcome="rate-limited"} 2`);
    } finally {
      await collector.stop();
      sink.close();
    }
  }, 30_000);

  const lines = readFireflies2022('fireflies e2e');
  it.skipIf(lines === undefined)(
    'the 10,000 real 2022 fireflies replayed over UDP into the daemon with two decode workers: accepted counts by state as counted from the file',
    async () => {
      // The built daemon (decode workers run dist/ code), as operators run it.
      const ports = await freePorts();
      const port = await freeUdpPort();
      const daemon = await startDaemon(ports, [`--firefly-port=${port}`, '--workers=2']);
      try {
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
        /** The value of one exact series line of the Prometheus text (0 when absent). */
        const metric = (text: string, series: string): number => {
          const line = text.split('\n').find((l) => l.startsWith(`${series} `));
          return line === undefined ? 0 : Number(line.slice(series.length + 1));
        };
        let text = '';
        await waitFor(async () => {
          text = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
          return metric(text, 'scitags_records_decoded_total{protocol="firefly",exporter="127.0.0.1"}') === EXPECTED_2022.fireflies;
        }, 30_000);
        expect({
          start: metric(text, 'scitags_fireflies_accepted_total{state="start"}'),
          ongoing: metric(text, 'scitags_fireflies_accepted_total{state="ongoing"}'),
          end: metric(text, 'scitags_fireflies_accepted_total{state="end"}'),
        }).toEqual(EXPECTED_2022.byState);
        expect(metric(text, 'scitags_decode_errors_total{reason="not-firefly",exporter="127.0.0.1"}')).toBe(EXPECTED_2022.notFirefly);
        expect(metric(text, 'scitags_datagrams_received_total{listener="firefly",exporter="127.0.0.1"}')).toBe(EXPECTED_2022.lines);
      } finally {
        await daemon.stop();
      }
    },
    90_000,
  );
});
