/**
 * The firefly parser (decoders/firefly/parse.ts) per framing, with exact values: every
 * framing seen in the field (../shared/SCITAGS.md), the schema's required and optional
 * fields, canonical addresses and times, and each refusal reason.
 */
import { describe, expect, it } from 'vitest';
import { FIREFLY_MAX_BYTES, parseFirefly, readHeader, type FireflyResult } from '../../decoders/firefly/parse.js';
import { parseTimeMs } from '../../decoders/firefly/schema.js';
import type { Firefly } from '../../decoders/firefly/types.js';

const enc = new TextEncoder();
const parse = (text: string): FireflyResult => parseFirefly(enc.encode(text));

function ok(text: string): Firefly {
  const r = parse(text);
  if (!r.ok) throw new Error(`refused: ${r.error.reason} ${r.error.detail}`);
  return r.firefly;
}
function refused(text: string | Uint8Array): { reason: string; detail: string } {
  const r = typeof text === 'string' ? parse(text) : parseFirefly(text);
  if (r.ok) throw new Error('accepted');
  return r.error;
}

// The flowd example of SCITAGS.md (times as flowd writes them: microseconds, +00:00).
const START_JSON =
  '{"version": 1, "flow-lifecycle": {"state": "start", "current-time": "2024-03-28T08:58:48.899646+00:00", "start-time": "2024-03-28T08:58:48.123456+00:00"}, ' +
  '"flow-id": {"afi": "ipv6", "src-ip": "2001:DB8:0:0:0:0:0:1", "dst-ip": "2001:db8::2", "protocol": "tcp", "src-port": 1234, "dst-port": 5678}, ' +
  '"context": {"experiment-id": 1, "activity-id": 1, "application": "flowd v1.0.2"}}';
const START_MS = Date.UTC(2024, 2, 28, 8, 58, 48, 123);
const CURRENT_MS = Date.UTC(2024, 2, 28, 8, 58, 48, 899);

const START: Firefly = {
  state: 'start',
  startMs: START_MS,
  endMs: undefined,
  currentMs: CURRENT_MS,
  ipVersion: 6,
  srcAddr: '2001:db8::1',
  dstAddr: '2001:db8::2',
  protocol: 'tcp',
  srcPort: 1234,
  dstPort: 5678,
  experimentId: 1,
  activityId: 1,
  application: 'flowd v1.0.2',
  receivedBytes: undefined,
  sentBytes: undefined,
  netlink: undefined,
  framing: 'rfc5424',
  host: 'host.example',
  appName: 'flowd',
};

describe('framings', () => {
  it('RFC 5424 with a timestamp (flowd)', () => {
    expect(ok(`<134>1 2024-03-28T08:58:48.899646+00:00 host.example flowd - firefly-json - ${START_JSON}`)).toEqual(START);
  });

  it("RFC 5424 with '-' for the timestamp (XRootD)", () => {
    expect(ok(`<134>1 - xrd.example xrootd - firefly-json - ${START_JSON}`)).toEqual({
      ...START,
      framing: 'rfc5424-no-time',
      host: 'xrd.example',
      appName: 'xrootd',
    });
  });

  it('no header (flowd-go), with a trailing newline', () => {
    expect(ok(`${START_JSON}\n`)).toEqual({ ...START, framing: 'bare', host: undefined, appName: undefined });
  });

  it("a relay's BSD-syslog prefix in front of the RFC 5424 message without its PRI (syslog-ng file)", () => {
    expect(
      ok(`Feb  1 18:54:27 red-gridftp10 1 2024-03-28T08:58:48.899646+00:00 host.example flowd - firefly-json - ${START_JSON}`),
    ).toEqual({
      ...START,
      framing: 'relay',
    });
  });

  it('a relay prefix with its own PRI in front of the RFC 5424 message with its PRI', () => {
    expect(ok(`<13>Feb  1 18:54:27 relay <134>1 - xrd.example xrootd - firefly-json - ${START_JSON}`)).toEqual({
      ...START,
      framing: 'relay',
      host: 'xrd.example',
      appName: 'xrootd',
    });
  });

  it('RFC 5424 with structured data and a NILVALUE hostname', () => {
    expect(readHeader('<134>1 2024-03-28T08:58:48Z - flowd 42 firefly-json [meta x="1"] ')).toEqual({
      framing: 'rfc5424',
      host: undefined,
      appName: 'flowd',
    });
  });

  it('any other text in front of the JSON is a relay prefix with no host', () => {
    expect(readHeader('<134>Mar 28 08:58:48 host flowd: ')).toEqual({ framing: 'relay', host: undefined, appName: undefined });
  });
});

describe('fields', () => {
  const body = (lifecycle: string, flowId: string, extra = ''): string =>
    `{"version":1,"flow-lifecycle":${lifecycle},"flow-id":${flowId},"context":{"experiment-id":2,"activity-id":3}${extra}}`;
  const V4 = '{"afi":"ipv4","src-ip":"192.0.2.1","dst-ip":"198.51.100.7","protocol":"udp","src-port":0,"dst-port":65535}';

  it('an end with usage and flowd-go netlink TCP info; IPv4; Z time; no application', () => {
    const netlink = '"netlink":{"skBuff":{"Retrans":0},"tcpInfo":{"rtt":101800,"deliveryRate":125000000,"totalRetrans":7,"sndCwnd":10}}';
    const f = ok(
      body(
        '{"state":"end","start-time":"2022-02-01T18:47:38Z","end-time":"2022-02-01T18:54:27.918527Z"}',
        V4,
        `,"usage":{"received":1000,"sent":2500000000},${netlink}`,
      ),
    );
    expect(f).toEqual({
      state: 'end',
      startMs: Date.UTC(2022, 1, 1, 18, 47, 38),
      endMs: Date.UTC(2022, 1, 1, 18, 54, 27, 918),
      currentMs: undefined,
      ipVersion: 4,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.7',
      protocol: 'udp',
      srcPort: 0,
      dstPort: 65535,
      experimentId: 2,
      activityId: 3,
      application: undefined,
      receivedBytes: 1000,
      sentBytes: 2500000000,
      netlink: { rttMs: 101.8, deliveryRateBytesPerSecond: 125000000, retransmits: 7 },
      framing: 'bare',
      host: undefined,
      appName: undefined,
    } satisfies Firefly);
  });

  it('IPv6 addresses in RFC 5952 form (IPv4-mapped in mixed notation, as the flow decoders write them)', () => {
    const f = ok(
      body(
        '{"state":"ongoing","start-time":"2024-01-01T00:00:00+02:00"}',
        '{"afi":"ipv6","src-ip":"2001:0DB8:0000:0000:0001:0000:0000:0001","dst-ip":"::FFFF:192.0.2.1","protocol":"tcp","src-port":1,"dst-port":2}',
      ),
    );
    expect([f.srcAddr, f.dstAddr, f.startMs]).toEqual(['2001:db8::1:0:0:1', '::ffff:192.0.2.1', Date.UTC(2023, 11, 31, 22, 0, 0)]);
  });

  it('times: offsets, fractions truncated to ms, impossible dates refused', () => {
    expect(parseTimeMs('2022-02-01T18:54:27.913953+00:00')).toBe(Date.UTC(2022, 1, 1, 18, 54, 27, 913));
    expect(parseTimeMs('2022-02-01 18:54:27.9-05:30')).toBe(Date.UTC(2022, 1, 1, 18, 54, 27, 900) + 5.5 * 3600_000);
    expect(parseTimeMs('2022-02-01T18:54:27')).toBe(Date.UTC(2022, 1, 1, 18, 54, 27));
    expect(parseTimeMs('2022-02-30T00:00:00Z')).toBeUndefined();
    expect(parseTimeMs('2022-13-01T00:00:00Z')).toBeUndefined();
    expect(parseTimeMs('1643741667')).toBeUndefined();
    expect(parseTimeMs('Feb 1 2022')).toBeUndefined();
  });

  it('schema refusals name the field', () => {
    const v6 = '{"afi":"ipv6","src-ip":"2001:db8::1","dst-ip":"2001:db8::2","protocol":"tcp","src-port":1,"dst-port":2}';
    const life = '{"state":"start","start-time":"2024-01-01T00:00:00Z"}';
    const cases: [string, string][] = [
      [body('{"state":"end","start-time":"2024-01-01T00:00:00Z"}', v6), 'flow-lifecycle.end-time: required when state is end'],
      [body('{"state":"stop","start-time":"2024-01-01T00:00:00Z"}', v6), 'flow-lifecycle.state'],
      [body('{"state":"start"}', v6), 'flow-lifecycle.start-time'],
      [body('{"state":"start","start-time":"yesterday"}', v6), 'flow-lifecycle.start-time: not an RFC 3339 date-time'],
      [body(life, V4.replace('192.0.2.1', '2001:db8::1')), 'flow-id.src-ip: not an ipv4 address'],
      [body(life, v6.replace('2001:db8::2', 'fe80::1%eth0')), 'flow-id.dst-ip: not an ipv6 address'],
      [body(life, v6.replace('"tcp"', '"icmp"')), 'flow-id.protocol'],
      [body(life, v6.replace('"src-port":1', '"src-port":65536')), 'flow-id.src-port'],
      [body(life, v6.replace('"dst-port":2', '"dst-port":"2"')), 'flow-id.dst-port'],
      [body(life, v6).replace('"experiment-id":2', '"experiment-id":512'), 'context.experiment-id'],
      [body(life, v6).replace('"activity-id":3', '"activity-id":64'), 'context.activity-id'],
      [body(life, v6).replace('"version":1', '"version":2'), 'version'],
      [body(life, v6, ',"usage":{"sent":-1}'), 'usage.sent'],
      ['{"version":1}', 'flow-lifecycle'],
    ];
    for (const [text, field] of cases) {
      const e = refused(text);
      expect(e.reason, text).toBe('schema');
      expect(e.detail.startsWith(field), `${e.detail} should start with ${field}`).toBe(true);
    }
  });
});

describe('refusals', () => {
  it('each reason', () => {
    expect(refused('Feb  1 18:56:51 9aa264ada6af syslog-ng[15]: Log statistics; processed=1').reason).toBe('not-firefly');
    expect(refused('<134>1 - h x - firefly-json - {"version": 1,').reason).toBe('not-json');
    expect(refused(`${START_JSON} trailing`).reason).toBe('not-json');
    expect(refused('[1] {"a":1}').reason).toBe('schema');
    expect(refused(Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d])).reason).toBe('not-utf8');
    expect(refused(new Uint8Array(0)).reason).toBe('not-firefly');
  });

  it('too-large: refused on its length, before any parsing (the cap itself is accepted)', () => {
    const pad = (n: number): string => `<134>1 - host flowd - firefly-json - ${START_JSON}`.padEnd(n, ' ');
    expect(ok(pad(FIREFLY_MAX_BYTES)).state).toBe('start');
    expect(refused(pad(FIREFLY_MAX_BYTES + 1))).toEqual({ reason: 'too-large', detail: `${FIREFLY_MAX_BYTES + 1} bytes (limit 16384)` });
    // Not even JSON: still too-large (its length is all that was read).
    expect(refused(new Uint8Array(FIREFLY_MAX_BYTES + 1).fill(0x7b)).reason).toBe('too-large');
  });

  it('nesting bombs under the cap are refusals, not crashes', () => {
    // 8,000 levels of arrays with no `{`: not a firefly, JSON.parse never runs.
    expect(refused(`${'['.repeat(8000)}${']'.repeat(8000)}`).reason).toBe('not-firefly');
    // 2,500 nested objects (15 KB): valid JSON, no firefly fields.
    expect(refused(`${'{"a":'.repeat(2500)}1${'}'.repeat(2500)}`).reason).toBe('schema');
    // 16,000 open brackets after a `{`: JSON.parse refuses (unterminated), caught.
    expect(refused(`{"a":${'['.repeat(16000)}`).reason).toBe('not-json');
  });
});
