/**
 * goflow2 input under arbitrary and damaged bytes: the decoder only ever reports catalogue
 * DecodeErrors (never throws, never half-decodes), every cut of a message inside a field is
 * reported as truncated, and the stream framer hands on exactly the whole messages before
 * any cut of a stream and reports the cut.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Goflow2Framer, separatorByte } from '../../collectors/goflow2-stream.js';
import type { DecodeOptions } from '../../decoders/decoder.js';
import { DecodeError, DecodeErrorCodes } from '../../decoders/errors.js';
import { createGoflow2Decoder } from '../../decoders/goflow2/decoder.js';
import type { FlowRecord } from '../../decoders/record.js';
import { encodeFlowMessage, encodeStream, msToNs, type FlowMessageFields } from '../support/goflow2.js';

const OPTS: DecodeOptions = { withFields: true, withAddresses: true, defaultSamplingRate: 1, innerHeaders: false };
const CTX = { exporterAddr: '192.0.2.1', exporterPort: 0, receivedMs: 0 };
const decoder = createGoflow2Decoder();

function decode(bytes: Uint8Array) {
  const records: FlowRecord[] = [];
  const out = decoder.decode(bytes, CTX, undefined, OPTS, (r) => records.push({ ...r }));
  return { records, out };
}

const address = fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 }));
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u53 = fc.maxSafeNat();
const nsTime = fc.integer({ min: 0, max: 4_000_000_000_000 }).map(msToNs);

/** One field each: a message is their concatenation (protobuf merges concatenated messages). */
const field: fc.Arbitrary<FlowMessageFields> = fc.oneof(
  fc.record({ type: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ sampling_rate: u53 }),
  fc.record({ sampler_address: address }),
  fc.record({ src_addr: address }),
  fc.record({ dst_addr: address }),
  fc.record({ bytes: u53 }),
  fc.record({ packets: u53 }),
  fc.record({ etype: fc.oneof(fc.constantFrom(0x0800, 0x86dd), fc.integer({ min: 0, max: 0xffff })) }),
  fc.record({ ipv6_flow_label: u32 }),
  fc.record({ in_if: u32 }),
  fc.record({ out_if: u32 }),
  fc.record({ proto: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ src_port: fc.integer({ min: 0, max: 65535 }) }),
  fc.record({ time_received_ns: nsTime }),
  fc.record({ time_flow_start_ns: nsTime }),
  fc.record({ time_flow_end_ns: nsTime }),
  fc.record({ as_path: fc.array(u32, { minLength: 1, maxLength: 5 }) }),
  // One element: each of a repeated bytes field's elements is a field of its own.
  fc.record({ mpls_ip: fc.array(address, { minLength: 1, maxLength: 1 }) }),
);
/** Non-default values only: proto3 writes nothing for a default, so the field would be empty. */
const parts = fc
  .array(field, { minLength: 1, maxLength: 12 })
  .map((fs) => fs.map((f) => encodeFlowMessage(f)).filter((b) => b.length > 0))
  .filter((bs) => bs.length > 0);

/** One record and no error, or no record and catalogue DecodeErrors (decode() never throws). */
function expectRecordOrTypedErrors(bytes: Uint8Array) {
  const { records, out } = decode(bytes);
  for (const e of out.errors) {
    expect(e).toBeInstanceOf(DecodeError);
    expect(DecodeErrorCodes).toContain(e.code);
  }
  expect(records.length + Math.min(out.errors.length, 1)).toBe(1);
}

describe('goflow2 decoder properties', () => {
  it('arbitrary bytes give a record or typed errors, never both, never an exception', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), expectRecordOrTypedErrors), { numRuns: 3000 });
  });

  it('damaged valid messages (bytes changed) give a record or typed errors', () => {
    fc.assert(
      fc.property(parts, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), (ps, edits) => {
        const msg = Buffer.concat(ps);
        for (const [at, v] of edits) msg[at % msg.length] = v;
        expectRecordOrTypedErrors(msg);
      }),
      { numRuns: 1000 },
    );
  });

  it('a message cut at a field boundary decodes; cut anywhere inside a field it is truncated', () => {
    fc.assert(
      fc.property(parts, (ps) => {
        const msg = Buffer.concat(ps);
        const boundaries = new Set<number>();
        ps.reduce((at, p) => (boundaries.add(at + p.length), at + p.length), 0);
        for (let cut = 1; cut < msg.length; cut++) {
          const { records, out } = decode(msg.subarray(0, cut));
          if (boundaries.has(cut)) expect([records.length, out.errors]).toEqual([1, []]);
          else expect([records.length, out.errors.map((e) => e.code)]).toEqual([0, ['truncated']]);
        }
        expect(decode(msg).records).toHaveLength(1);
      }),
      { numRuns: 300 },
    );
  });
});

describe('goflow2 stream framing properties', () => {
  it('a stream cut anywhere gives the whole messages before the cut, and the cut is reported', () => {
    const msg = fc.array(field, { maxLength: 4 }).map((fs) => Object.assign({}, ...fs) as FlowMessageFields);
    fc.assert(
      fc.property(fc.array(msg, { minLength: 1, maxLength: 6 }), fc.nat(), fc.integer({ min: 1, max: 64 }), (ms, cutAt, chunk) => {
        const stream = encodeStream(ms);
        const cut = cutAt % (stream.length + 1);
        // Where each message ends, and its separator after it (a newline, goflow2's default).
        const ends: number[] = [];
        const seps: number[] = [];
        ms.reduce((at, m) => {
          const framed = encodeStream([m]).length;
          ends.push(at + framed - 1);
          seps.push(at + framed);
          return at + framed;
        }, 0);
        const f = new Goflow2Framer(65536, separatorByte('newline'));
        const got: Buffer[] = [];
        for (let at = 0; at < cut; at += chunk) {
          f.push(stream.subarray(at, Math.min(cut, at + chunk)));
          for (let m = f.next(); m !== undefined; m = f.next()) {
            if (m instanceof DecodeError) throw m;
            got.push(Buffer.from(m));
          }
        }
        const whole = ends.filter((e) => e <= cut).length;
        expect(got.map((b) => b.toString('hex'))).toEqual(ms.slice(0, whole).map((m) => Buffer.from(encodeFlowMessage(m)).toString('hex')));
        // A last message without its separator was handed on whole: not an error.
        expect(f.end()?.code).toBe(cut === 0 || ends.includes(cut) || seps.includes(cut) ? undefined : 'truncated');
      }),
      { numRuns: 500 },
    );
  });
});
