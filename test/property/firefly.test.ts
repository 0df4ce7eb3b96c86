/**
 * Firefly parser properties: generated valid fireflies come back exactly in every framing;
 * arbitrary bytes and mutated fireflies never throw and are refused with one of the bounded
 * reasons.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FireflyErrorReasons, parseFirefly } from '../../decoders/firefly/parse.js';
import type { Firefly, FireflyFraming } from '../../decoders/firefly/types.js';

const enc = new TextEncoder();

/** The WHATWG URL form of an IPv6 address: an independent normaliser to compare with. */
const whatwg = (a: string): string => new URL(`http://[${a}]/`).hostname;

/** A syslog token: printable ASCII without spaces, `{`, `[` (RFC 5424 PRINTUSASCII minus what we split on). */
const token = fc.stringMatching(/^[A-Za-z0-9._:-]{1,40}$/);

/** A time between 1970 and 2100 written as a host might: Z or an offset, 0 / 3 / 6 fraction digits. */
const time = fc
  .record({
    ms: fc.integer({ min: 0, max: Date.UTC(2100, 0, 1) }),
    offsetMin: fc.integer({ min: -12 * 60, max: 14 * 60 }),
    micros: fc.integer({ min: 0, max: 999 }),
    style: fc.constantFrom('Z', 'offset', 'seconds'),
  })
  .map(({ ms, offsetMin, micros, style }) => {
    if (style === 'seconds') {
      const whole = Math.floor(ms / 1000) * 1000;
      return { ms: whole, text: new Date(whole).toISOString().replace('.000Z', 'Z') };
    }
    if (style === 'Z') return { ms, text: new Date(ms).toISOString().replace('Z', `${String(micros).padStart(3, '0')}Z`) };
    const local = new Date(ms + offsetMin * 60_000).toISOString().slice(0, 23);
    const sign = offsetMin < 0 ? '-' : '+';
    const abs = Math.abs(offsetMin);
    const off = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
    return { ms, text: `${local}${String(micros).padStart(3, '0')}${off}` };
  });

const addresses = fc.oneof(
  fc.record({ afi: fc.constant('ipv4' as const), src: fc.ipV4(), dst: fc.ipV4() }),
  fc.record({ afi: fc.constant('ipv6' as const), src: fc.ipV6(), dst: fc.ipV6() }),
);

const firefly = fc.record({
  state: fc.constantFrom('start' as const, 'ongoing' as const, 'end' as const),
  start: time,
  end: time,
  current: fc.option(time, { nil: undefined }),
  addr: addresses,
  protocol: fc.constantFrom('tcp' as const, 'udp' as const),
  srcPort: fc.integer({ min: 0, max: 65535 }),
  dstPort: fc.integer({ min: 0, max: 65535 }),
  experimentId: fc.integer({ min: 0, max: 511 }),
  activityId: fc.integer({ min: 0, max: 63 }),
  application: fc.option(fc.string({ maxLength: 100 }), { nil: undefined }),
  usage: fc.option(fc.record({ received: fc.maxSafeNat(), sent: fc.maxSafeNat() }), { nil: undefined }),
  rttUs: fc.option(fc.integer({ min: 0, max: 10_000_000 }), { nil: undefined }),
  /** Keys a host may add: ignored. */
  extra: fc.dictionary(fc.stringMatching(/^x-[a-z]{1,8}$/), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
});
type Generated = typeof firefly extends fc.Arbitrary<infer T> ? T : never;

function jsonOf(g: Generated): string {
  return JSON.stringify({
    ...g.extra,
    version: 1,
    'flow-lifecycle': {
      state: g.state,
      'start-time': g.start.text,
      ...(g.state === 'end' ? { 'end-time': g.end.text } : {}),
      ...(g.current ? { 'current-time': g.current.text } : {}),
    },
    'flow-id': {
      afi: g.addr.afi,
      'src-ip': g.addr.src,
      'dst-ip': g.addr.dst,
      protocol: g.protocol,
      'src-port': g.srcPort,
      'dst-port': g.dstPort,
    },
    context: {
      'experiment-id': g.experimentId,
      'activity-id': g.activityId,
      ...(g.application !== undefined ? { application: g.application } : {}),
    },
    ...(g.usage ? { usage: g.usage } : {}),
    ...(g.rttUs !== undefined ? { netlink: { tcpInfo: { rtt: g.rttUs } } } : {}),
  });
}

const framings = fc.record({
  framing: fc.constantFrom<FireflyFraming>('rfc5424', 'rfc5424-no-time', 'bare', 'relay'),
  host: token,
  app: token,
  relay: token,
  pri: fc.integer({ min: 0, max: 191 }),
});

function frame(json: string, f: typeof framings extends fc.Arbitrary<infer T> ? T : never, headerTime: string): string {
  switch (f.framing) {
    case 'rfc5424':
      return `<${f.pri}>1 ${headerTime} ${f.host} ${f.app} - firefly-json - ${json}`;
    case 'rfc5424-no-time':
      return `<${f.pri}>1 - ${f.host} ${f.app} - firefly-json - ${json}`;
    case 'bare':
      return json;
    case 'relay':
      return `Feb  1 18:54:27 ${f.relay} 1 ${headerTime} ${f.host} ${f.app} - firefly-json - ${json}`;
  }
}

describe('firefly parser properties', () => {
  it('a generated valid firefly comes back exactly, in every framing', () => {
    fc.assert(
      fc.property(firefly, framings, (g, f) => {
        const r = parseFirefly(enc.encode(frame(jsonOf(g), f, g.start.text)));
        if (!r.ok) throw new Error(`refused: ${r.error.reason} ${r.error.detail}`);
        const p = r.firefly;
        const v6 = g.addr.afi === 'ipv6';
        expect({ ...p, srcAddr: '', dstAddr: '' }).toEqual({
          state: g.state,
          startMs: g.start.ms,
          endMs: g.state === 'end' ? g.end.ms : undefined,
          currentMs: g.current?.ms,
          ipVersion: v6 ? 6 : 4,
          srcAddr: '',
          dstAddr: '',
          protocol: g.protocol,
          srcPort: g.srcPort,
          dstPort: g.dstPort,
          experimentId: g.experimentId,
          activityId: g.activityId,
          application: g.application,
          receivedBytes: g.usage?.received,
          sentBytes: g.usage?.sent,
          netlink:
            g.rttUs === undefined ? undefined : { rttMs: g.rttUs / 1000, deliveryRateBytesPerSecond: undefined, retransmits: undefined },
          framing: f.framing,
          host: f.framing === 'bare' ? undefined : f.host === '-' ? undefined : f.host,
          appName: f.framing === 'bare' ? undefined : f.app === '-' ? undefined : f.app,
        } satisfies Firefly);
        if (v6) {
          // The same address as an independent normaliser reads it, in lower case, and a fixed point.
          expect([whatwg(p.srcAddr), whatwg(p.dstAddr)]).toEqual([whatwg(g.addr.src), whatwg(g.addr.dst)]);
          expect(p.srcAddr).toBe(p.srcAddr.toLowerCase());
          const again = parseFirefly(enc.encode(jsonOf({ ...g, addr: { afi: 'ipv6', src: p.srcAddr, dst: p.dstAddr } })));
          expect(again.ok && [again.firefly.srcAddr, again.firefly.dstAddr]).toEqual([p.srcAddr, p.dstAddr]);
        } else {
          expect([p.srcAddr, p.dstAddr]).toEqual([g.addr.src, g.addr.dst]);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('arbitrary bytes never throw: accepted, or refused with a bounded reason', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 3000 }),
          fc.string({ maxLength: 2000 }).map((s) => enc.encode(s)),
        ),
        (bytes) => {
          const r = parseFirefly(bytes);
          if (!r.ok) expect(FireflyErrorReasons).toContain(r.error.reason);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('mutated valid fireflies never throw; a refusal has a bounded reason', () => {
    fc.assert(
      fc.property(
        firefly,
        framings,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (g, f, edits) => {
          const bytes = enc.encode(frame(jsonOf(g), f, g.start.text));
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          const r = parseFirefly(bytes);
          if (!r.ok) expect(FireflyErrorReasons).toContain(r.error.reason);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
