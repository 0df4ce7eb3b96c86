/**
 * sFlow decoder robustness: arbitrary bytes, mutated and truncated real datagrams give
 * only DecodeError (thrown, or collected in result.errors), never another exception or a
 * hang; every truncation of a fixture datagram is reported.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { DecodeError } from '../../decoders/errors.js';
import type { FlowRecord } from '../../decoders/record.js';
import { createSflowState, decodeSflow, type SflowDecodeResult } from '../../decoders/sflow/index.js';
import { fixturePath } from '../support/expected.js';

const CAPTURE = fixturePath('sflow_pmacct_sfprobe_rate1.pcap');
// Views into the capture file's bytes: a test that changes octets copies first (Uint8Array.from).
const datagrams = readCaptureFile(CAPTURE).datagrams.map((d) => d.payload);

/** Decodes and classifies: 'ok', 'reported' (errors or DecodeError thrown); rethrows anything else. */
function attempt(bytes: Uint8Array, opts = {}): { outcome: 'ok' | 'reported'; result?: SflowDecodeResult } {
  try {
    const result = decodeSflow(bytes, '192.0.2.1', 6343, createSflowState({ maxAgents: 4, maxSources: 16 }), opts);
    for (const e of result.errors) if (!(e instanceof DecodeError)) throw new Error(`not a DecodeError: ${String(e)}`);
    return { outcome: result.errors.length > 0 ? 'reported' : 'ok', result };
  } catch (err) {
    if (err instanceof DecodeError) return { outcome: 'reported' };
    throw err;
  }
}

/** A valid-looking header (version 5, IPv4 agent) so random bodies reach the sample decoders. */
const HEADER = Uint8Array.from([0, 0, 0, 5, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);

describe('sFlow decoder fuzzing', () => {
  it('has fixture datagrams to work on', () => {
    expect(datagrams.length).toBe(235);
  });

  it('random bytes give only DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), (bytes) => {
        attempt(bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it('a valid header followed by random samples gives only DecodeError', () => {
    fc.assert(
      fc.property(fc.nat(20), fc.uint8Array({ maxLength: 1500 }), fc.boolean(), (count, body, inner) => {
        const bytes = new Uint8Array(HEADER.length + 4 + body.length);
        bytes.set(HEADER);
        new DataView(bytes.buffer).setUint32(HEADER.length, count);
        bytes.set(body, HEADER.length + 4);
        attempt(bytes, { innerHeaders: inner, withFields: true });
      }),
      { numRuns: 3000 },
    );
  });

  it('fixture datagrams with random octets overwritten give only DecodeError', () => {
    fc.assert(
      fc.property(
        fc.nat(datagrams.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.oneof(fc.nat(255), fc.constant(0xff), fc.constant(0))), { minLength: 1, maxLength: 8 }),
        (i, edits) => {
          const bytes = Uint8Array.from(datagrams[i]!);
          for (const [pos, v] of edits) bytes[pos % bytes.length] = v;
          attempt(bytes, { innerHeaders: true });
        },
      ),
      { numRuns: 3000 },
    );
  });

  /**
   * A record as text, its addrBytes left out: that is the datagram (here the cut one, a view of
   * the full one), and what it holds at the offsets, which are compared, is the same.
   */
  const recordJson = (r: FlowRecord): string => JSON.stringify(r, (k, v: unknown) => (k === 'addrBytes' ? undefined : v));

  it('every truncation of every fixture datagram is reported, and keeps only whole samples', () => {
    // ~300k cuts: plain checks collected into one assertion (expect() per cut is slow), and
    // no stack traces for the DecodeErrors, whose capture dominates the time otherwise.
    const failures: string[] = [];
    let cuts = 0;
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      for (const [i, full] of datagrams.entries()) {
        const complete = attempt(full);
        expect(complete.outcome).toBe('ok');
        const all = complete.result!.records.map(recordJson);
        for (let n = 0; n < full.length; n++) {
          const { outcome, result } = attempt(full.subarray(0, n));
          if (outcome !== 'reported') failures.push(`datagram ${i} cut at ${n}: not reported`);
          // Whatever was kept is a prefix of the full decode, sample for sample.
          const kept = result?.records ?? [];
          if (kept.length > all.length) failures.push(`datagram ${i} cut at ${n}: more records than the full datagram`);
          kept.forEach((r, j) => {
            if (recordJson(r) !== all[j]) failures.push(`datagram ${i} cut at ${n}: record ${j} differs`);
          });
          cuts++;
        }
      }
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    expect(failures.slice(0, 10)).toEqual([]);
    expect(cuts).toBe(datagrams.reduce((n, d) => n + d.length, 0));
  }, 120_000);
});
