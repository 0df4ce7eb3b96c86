/**
 * Hostile input: whatever the bytes, decodeFlowDatagram returns (it never throws), and every
 * problem it reports is a DecodeError. Covers random bytes, random bytes behind valid
 * headers, random mutations of builder datagrams, and every truncation of every datagram
 * in the IPFIX / NetFlow fixture captures.
 */
import { existsSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { DecodeError } from '../../decoders/errors.js';
import { createFlowDecoderState, decodeFlowDatagram, type FlowDecoderState } from '../../decoders/ipfix/index.js';
import {
  f,
  ipfixDataSet,
  ipfixMessage,
  ipfixOptionsTemplateSet,
  ipfixTemplateSet,
  v5Datagram,
  v9DataFlowset,
  v9Message,
  v9TemplateFlowset,
  VARLEN,
} from '../builders/ipfix.js';
import { FIXTURES, fixturePath } from '../support/expected.js';

function check(bytes: Uint8Array, st: FlowDecoderState, port = 4739, ms = 0): void {
  const r = decodeFlowDatagram(bytes, { exporterAddr: '192.0.2.1', exporterPort: port, receivedMs: ms }, st, { withFields: true });
  for (const e of r.errors) expect(e).toBeInstanceOf(DecodeError);
  for (const rec of r.records) {
    expect(Number.isFinite(rec.bytes) && rec.bytes >= 0).toBe(true);
    expect(Number.isFinite(rec.packets) && rec.packets >= 0).toBe(true);
    expect(rec.samplingRate >= 1).toBe(true);
  }
}

const T = [f('sourceIPv6Address', 16), f('octetDeltaCount', 8), f('flowLabelIPv6', 3), f('interfaceName', VARLEN)];
const seedIpfix = ipfixMessage({ domain: 1 }, [
  ipfixTemplateSet([{ id: 256, fields: T }]),
  ipfixOptionsTemplateSet([{ id: 257, fields: [f('samplerId', 1), f('samplerRandomInterval', 4)], scopeCount: 1 }]),
  ipfixDataSet(257, [f('samplerId', 1), f('samplerRandomInterval', 4)], [[1, 10]]),
  ipfixDataSet(256, T, [
    ['2001:db8::1', 100, 0x10004, 'eth0'],
    ['2001:db8::2', 200, 0, 'x'.repeat(300)],
  ]),
]);
const seedV9 = v9Message({ records: 2 }, [
  v9TemplateFlowset([{ id: 256, fields: [f('octetDeltaCount', 4), f('flowLabelIPv6', 3)] }]),
  v9DataFlowset(256, [f('octetDeltaCount', 4), f('flowLabelIPv6', 3)], [[1, 2]]),
]);
const seedV5 = v5Datagram({ samplingInterval: 10 }, [{ src: '10.0.0.1', dst: '10.0.0.2', packets: 1, bytes: 2 }]);

describe('random input gives only DecodeErrors', () => {
  it('arbitrary bytes', () => {
    const st = createFlowDecoderState();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => check(b, st)),
      { numRuns: 2000 },
    );
  });

  it('arbitrary bodies behind valid IPFIX / v9 / v5 headers', () => {
    const st = createFlowDecoderState({ maxPendingBytes: 4096 });
    fc.assert(
      fc.property(fc.constantFrom(5, 9, 10), fc.uint8Array({ maxLength: 600 }), fc.nat(3), (version, body, port) => {
        const hdr = version === 10 ? 16 : version === 9 ? 20 : 24;
        const b = new Uint8Array(hdr + body.length);
        b.set(body, hdr);
        b[1] = version;
        if (version === 5) b[3] = Math.min(30, Math.floor(body.length / 48));
        if (version === 10) {
          b[2] = (b.length >> 8) & 0xff; // a message length that matches: sets get parsed
          b[3] = b.length & 0xff;
        }
        check(b, st, port);
      }),
      { numRuns: 2000 },
    );
  });

  it('random mutations of builder datagrams (state carried across runs)', () => {
    const st = createFlowDecoderState();
    fc.assert(
      fc.property(
        fc.constantFrom(seedIpfix, seedV9, seedV5),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(1_000_000),
        (seed, flips, ms) => {
          const b = seed.slice();
          for (const [i, v] of flips) b[i % b.length] = v;
          check(b, st, 4739, ms);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('every truncation of the builder datagrams', () => {
    for (const seed of [seedIpfix, seedV9, seedV5]) {
      const st = createFlowDecoderState();
      for (let n = 0; n < seed.length; n++) {
        const r = decodeFlowDatagram(seed.subarray(0, n), { exporterAddr: '192.0.2.1', exporterPort: 1, receivedMs: 0 }, st, {});
        for (const e of r.errors) expect(e).toBeInstanceOf(DecodeError);
        // IPFIX and v5 carry their length: a cut datagram is reported, never half-decoded.
        if (seed !== seedV9) expect(r.errors.length, `cut at ${n}`).toBeGreaterThan(0);
      }
    }
  });
});

const captures = existsSync(FIXTURES) ? readdirSync(FIXTURES).filter((n) => /^(ipfix|netflow).*\.pcap$/.test(n)) : [];

describe.skipIf(captures.length === 0)('every truncation of every fixture datagram', () => {
  for (const name of captures) {
    it(name, () => {
      const all = readCaptureFile(fixturePath(name)).datagrams;
      expect(all.length).toBeGreaterThan(0);
      // Every truncation costs O(length) decodes per datagram: bound the work per capture to
      // the first datagrams (templates and options come first) up to ~64 KiB of payload, so a
      // 2 MB PSAMP capture stays a seconds-long test instead of minutes.
      const datagrams: typeof all = [];
      let budget = 64 * 1024;
      for (const d of all) {
        if (budget <= 0) break;
        datagrams.push(d);
        budget -= d.payload.length;
      }
      // State carried over so that data sets meet their templates, as in real life.
      const st = createFlowDecoderState();
      for (const d of datagrams) {
        for (let n = 0; n <= d.payload.length; n++) {
          const r = decodeFlowDatagram(
            d.payload.subarray(0, n),
            { exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs },
            st,
            {
              withFields: true,
            },
          );
          for (const e of r.errors) expect(e).toBeInstanceOf(DecodeError);
          const v = d.payload[1];
          if (n < d.payload.length && v !== 9) expect(r.errors.length, `${name} frame ${d.frame} cut at ${n}`).toBeGreaterThan(0);
        }
      }
    });
  }
});
