/**
 * `decode` and `ingest` read fireflies from captures: UDP datagrams to the firefly port (10514)
 * in every framing (flowd RFC 5424, XRootD without a timestamp, flowd-go bare JSON, a relay's
 * BSD prefix), refused ones by reason, and flows through the daemon's flow table with capture
 * time as its clock. The capture is written here, byte by byte (classic pcap, raw IP).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeFirefly } from '../../src/commands/decode.js';
import { ingestFiles, type IngestDocument } from '../../src/commands/ingest.js';
import { decodeCaptures } from '../../src/ingest/captures.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { fixturePath } from '../support/expected.js';

const registry = loadSnapshot(0);
const enc = new TextEncoder();
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const iso = (ms: number): string => new Date(ms).toISOString();

function be16(v: number): number[] {
  return [(v >> 8) & 0xff, v & 0xff];
}
function le32(v: number): number[] {
  return [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
}

/** UDP over IPv4 (no checksums: the reader does not check them) to 127.0.0.1. */
function udp4(src: number[], sport: number, dport: number, payload: Uint8Array): number[] {
  const udpLen = 8 + payload.length;
  return [
    0x45,
    0,
    ...be16(20 + udpLen),
    0,
    0,
    0x40,
    0,
    64,
    17,
    0,
    0,
    ...src,
    127,
    0,
    0,
    1,
    ...be16(sport),
    ...be16(dport),
    ...be16(udpLen),
    0,
    0,
    ...payload,
  ];
}

/** UDP over IPv6 from 2001:db8::1 to ::1. */
function udp6(sport: number, dport: number, payload: Uint8Array): number[] {
  const udpLen = 8 + payload.length;
  const src = [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1];
  const dst = [...new Array<number>(15).fill(0), 1];
  return [0x60, 0, 0, 0, ...be16(udpLen), 17, 64, ...src, ...dst, ...be16(sport), ...be16(dport), ...be16(udpLen), 0, 0, ...payload];
}

/** Classic little-endian microsecond pcap, link type RAW (101), each frame at its own ms. */
function pcap(frames: { ms: number; ip: number[] }[]): Uint8Array {
  const out = [...le32(0xa1b2c3d4), 2, 0, 4, 0, ...le32(0), ...le32(0), ...le32(65535), ...le32(101)];
  for (const f of frames) {
    out.push(...le32(Math.floor(f.ms / 1000)), ...le32((f.ms % 1000) * 1000), ...le32(f.ip.length), ...le32(f.ip.length), ...f.ip);
  }
  return Uint8Array.from(out);
}

interface Fly {
  state: 'start' | 'ongoing' | 'end';
  afi: 'ipv4' | 'ipv6';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  exp: number;
  act: number;
  startMs: number;
  endMs?: number;
  usage?: { received: number; sent: number };
}
function json(f: Fly): string {
  return JSON.stringify({
    version: 1,
    'flow-lifecycle': { state: f.state, 'start-time': iso(f.startMs), ...(f.endMs === undefined ? {} : { 'end-time': iso(f.endMs) }) },
    'flow-id': { afi: f.afi, 'src-ip': f.src, 'dst-ip': f.dst, protocol: 'tcp', 'src-port': f.sport, 'dst-port': f.dport },
    context: { 'experiment-id': f.exp, 'activity-id': f.act },
    ...(f.usage ? { usage: f.usage } : {}),
  });
}

// Flow A (2/1, IPv6): start, XRootD's swapped copy, end. B (200/10, IPv4): start, never ends.
const A: Fly = {
  state: 'start',
  afi: 'ipv6',
  src: '2001:db8:1::10',
  dst: '2001:db8:2::20',
  sport: 40000,
  dport: 1094,
  exp: 2,
  act: 1,
  startMs: T0,
};
const aSwapped: Fly = { ...A, src: A.dst, dst: A.src, sport: A.dport, dport: A.sport };
const B: Fly = {
  state: 'start',
  afi: 'ipv4',
  src: '192.0.2.10',
  dst: '198.51.100.20',
  sport: 50000,
  dport: 1094,
  exp: 200,
  act: 10,
  startMs: T0 + 1000,
};
const DAY = 86_400_000;

const SENDER = [10, 0, 0, 1];
const frames = [
  // 1: flowd, RFC 5424 with a timestamp
  { ms: T0, ip: udp4(SENDER, 514, 10514, enc.encode(`<134>1 ${iso(T0)} flowd.example flowd - firefly-json - ${json(A)}`)) },
  // 2: XRootD, RFC 5424 with '-' for the timestamp, over IPv6: the swapped copy (a duplicate)
  { ms: T0 + 500, ip: udp6(33000, 10514, enc.encode(`<134>1 - xrd.example xrootd - firefly-json - ${json(aSwapped)}`)) },
  // 3: flowd-go, bare JSON
  { ms: T0 + 1000, ip: udp4(SENDER, 514, 10514, enc.encode(`${json(B)}\n`)) },
  // 4: a relay's BSD prefix: the end of A, 4 s, 2,000,000 bytes
  {
    ms: T0 + 5000,
    ip: udp4(
      SENDER,
      514,
      10514,
      enc.encode(
        `Jan  1 12:00:05 relay 1 ${iso(T0 + 4000)} flowd.example flowd - firefly-json - ${json({ ...A, state: 'end', endMs: T0 + 4000, usage: { received: 0, sent: 2_000_000 } })}`,
      ),
    ),
  },
  // 5: an end whose start was never seen
  {
    ms: T0 + 6000,
    ip: udp4(SENDER, 514, 10514, enc.encode(json({ ...A, sport: 40001, state: 'end', startMs: T0 - 60_000, endMs: T0 + 6000 }))),
  },
  // 6-8: refused
  { ms: T0 + 7000, ip: udp4(SENDER, 514, 10514, enc.encode('<134>1 - h app - firefly-json - {"version": 1,')) },
  { ms: T0 + 8000, ip: udp4(SENDER, 514, 10514, enc.encode(json(A).replace('"version":1', '"version":2'))) },
  { ms: T0 + 9000, ip: udp4(SENDER, 514, 10514, enc.encode('relay statistics: 12 messages')) },
  // 9: a day later: B expires (its end never came) before this ongoing opens a flow without start
  { ms: T0 + 1000 + DAY, ip: udp4(SENDER, 514, 10514, enc.encode(json({ ...B, sport: 50001, state: 'ongoing' }))) },
];

const dir = mkdtempSync(join(tmpdir(), 'ingest-fireflies-'));
const capture = join(dir, 'fireflies.pcap');
writeFileSync(capture, pcap(frames));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EXPECTED_SECTION = {
  datagrams: 9,
  accepted: { start: 3, ongoing: 1, end: 2 },
  refused: { 'not-json': 1, schema: 1, 'not-firefly': 1 },
  flows: [
    {
      community: 2,
      activity: 1,
      communityName: 'atlas',
      activityName: 'default',
      registered: true,
      started: 1,
      ended: 2,
      expired: 0,
      withoutStart: 1,
    },
    {
      community: 200,
      activity: 10,
      communityName: null,
      activityName: null,
      registered: false,
      started: 1,
      ended: 0,
      expired: 1,
      withoutStart: 0,
    },
  ],
  duplicates: 1,
  open: 1,
};

describe('decode reads fireflies', () => {
  it('prints each datagram to the firefly port as its parsed firefly or its refusal', () => {
    const lines: Record<string, unknown>[] = [];
    const diagnostics: string[] = [];
    const decoder = new DatagramDecoder(DEFAULT_DECODER_OPTIONS);
    const out = decodeCaptures(
      [capture],
      decoder,
      (l) => diagnostics.push(l),
      () => {},
      {
        port: 10514,
        decoder: new DatagramDecoder(DEFAULT_DECODER_OPTIONS),
        onFirefly: (firefly, o) => lines.push(describeFirefly(o, { firefly }, registry)),
        onRefused: (refused, detail, o) => lines.push(describeFirefly(o, { refused, detail }, registry)),
      },
    );
    expect(out).toEqual({ skippedFrames: 0, fireflyDatagrams: 9 });
    // The flow decoder saw nothing: fireflies do not touch the flow protocols' counters.
    expect(decoder.totals.datagrams).toBe(0);
    expect(lines).toHaveLength(9);
    const scitags21 = { community: 2, activity: 1, communityName: 'atlas', activityName: 'default', registered: true };
    expect(lines[0]).toEqual({
      file: capture,
      frame: 1,
      protocol: 'firefly',
      exporter: '10.0.0.1:514',
      receivedMs: T0,
      state: 'start',
      startMs: T0,
      endMs: undefined,
      currentMs: undefined,
      ipVersion: 6,
      srcAddr: '2001:db8:1::10',
      dstAddr: '2001:db8:2::20',
      ipProtocol: 6,
      srcPort: 40000,
      dstPort: 1094,
      experimentId: 2,
      activityId: 1,
      application: undefined,
      receivedBytes: undefined,
      sentBytes: undefined,
      netlink: undefined,
      framing: 'rfc5424',
      host: 'flowd.example',
      appName: 'flowd',
      scitags: scitags21,
    });
    expect(lines.map((l) => [l.frame, l.exporter, l.framing ?? l.refused, l.state, l.srcAddr])).toEqual([
      [1, '10.0.0.1:514', 'rfc5424', 'start', '2001:db8:1::10'],
      [2, '[2001:db8::1]:33000', 'rfc5424-no-time', 'start', '2001:db8:2::20'],
      [3, '10.0.0.1:514', 'bare', 'start', '192.0.2.10'],
      [4, '10.0.0.1:514', 'relay', 'end', '2001:db8:1::10'],
      [5, '10.0.0.1:514', 'bare', 'end', '2001:db8:1::10'],
      [6, '10.0.0.1:514', 'not-json', undefined, undefined],
      [7, '10.0.0.1:514', 'schema', undefined, undefined],
      [8, '10.0.0.1:514', 'not-firefly', undefined, undefined],
      [9, '10.0.0.1:514', 'bare', 'ongoing', '192.0.2.10'],
    ]);
    expect(lines[3]).toMatchObject({ endMs: T0 + 4000, receivedBytes: 0, sentBytes: 2_000_000, host: 'flowd.example' });
    expect(lines[6]).toEqual({
      file: capture,
      frame: 7,
      protocol: 'firefly',
      exporter: '10.0.0.1:514',
      receivedMs: T0 + 8000,
      refused: 'schema',
      detail: lines[6]!.detail,
    });
    expect(String(lines[6]!.detail)).toMatch(/^schema: firefly refused: .*version/);
    expect(diagnostics).toEqual([
      `${capture}: frame 6: ${String(lines[5]!.detail)}`,
      `${capture}: frame 7: ${String(lines[6]!.detail)}`,
      `${capture}: frame 8: ${String(lines[7]!.detail)}`,
    ]);
  });
});

describe('ingest reads fireflies', () => {
  it('adds the fireflies section: accepted by state, refused by reason, flows per pair through the flow table', async () => {
    const doc = await ingestFiles([capture], { registry, onDiagnostic: () => {} });
    expect(doc.fireflies).toEqual(EXPECTED_SECTION);
    // The flow protocols' fields are untouched by fireflies.
    expect(doc.pairs).toEqual([]);
    expect(doc.stats).toMatchObject({ datagrams: 0, records: 0, decodeErrors: 0, skippedFrames: 0, errorsByCode: {} });
  });

  it('a capture without fireflies has no section, and flow captures beside it count as before', async () => {
    const doc = await ingestFiles([fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap'), capture], { registry, onDiagnostic: () => {} });
    expect(doc.stats).toMatchObject({ datagrams: 9, records: 43, decodeErrors: 0, templateMisses: 0 });
    expect(doc.fireflies).toEqual(EXPECTED_SECTION);
    const alone = await ingestFiles([fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap')], { registry, onDiagnostic: () => {} });
    expect(alone.pairs).toEqual(doc.pairs);
    // No firefly datagrams: no section at all, so a flow-only document keeps the contract's shape.
    expect(Object.keys(alone)).toEqual(['pairs', 'unmarked', 'stats']);
  });
});

describe('the built CLI', () => {
  const cli = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

  it('decode prints one line per firefly datagram and ingest the same section', () => {
    const decoded = execFileSync(process.execPath, [cli, 'decode', capture], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(decoded.map((l) => l.state ?? l.refused)).toEqual([
      'start',
      'start',
      'start',
      'end',
      'end',
      'not-json',
      'schema',
      'not-firefly',
      'ongoing',
    ]);
    expect(decoded[3]).toMatchObject({
      frame: 4,
      framing: 'relay',
      endMs: T0 + 4000,
      sentBytes: 2_000_000,
      scitags: { communityName: 'atlas' },
    });
    const doc = JSON.parse(execFileSync(process.execPath, [cli, 'ingest', '--quiet', capture], { encoding: 'utf8' })) as IngestDocument;
    expect(doc.fireflies).toEqual(EXPECTED_SECTION);
  });
});
