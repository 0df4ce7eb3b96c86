/**
 * The compiled fill of fixed-length templates (decoders/ipfix/fill-compiled.ts) must give
 * exactly the records the reference fillRecord gives: random templates drawn from every IE
 * and length the plan maps to a slot (and lengths it skips), random record bytes, IPFIX and
 * NetFlow v9, with and without address formatting, decoded once each way and compared field
 * by field (the address bytes included: both the datagram, at the same offsets, formatting
 * to the same addresses as the strings).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { useCompiledFill } from '../../decoders/ipfix/data.js';
import { createFlowDecoderState, decodeFlowDatagram } from '../../decoders/ipfix/index.js';
import { ipv4String, ipv6String } from '../../decoders/packet/addr.js';
import type { FlowRecord } from '../../decoders/record.js';
import { f, ipfixMessage, ipfixSet, ipfixTemplateSet, v9Message, v9TemplateFlowset, type Field } from '../builders/ipfix.js';

/** IE id -> lengths to draw from: the ones the plan takes and some it skips. */
const POOL: [number, number[]][] = [
  [1, [1, 2, 3, 4, 5, 8]], // octetDeltaCount (reduced-size encodings, RFC 7011 6.2)
  [2, [3, 4, 8]], // packetDeltaCount
  [4, [1, 2]], // protocolIdentifier (2: skipped)
  [5, [1]], // ipClassOfService
  [7, [2]], // sourceTransportPort
  [11, [2]], // destinationTransportPort
  [8, [4]], // sourceIPv4Address
  [12, [4]], // destinationIPv4Address
  [27, [16]], // sourceIPv6Address
  [28, [16]], // destinationIPv6Address
  [10, [1, 2, 3, 4]], // ingressInterface
  [14, [2, 4]], // egressInterface
  [61, [1]], // flowDirection
  [58, [1, 2]], // vlanId
  [243, [2]], // dot1qVlanId
  [31, [1, 2, 3, 4]], // flowLabelIPv6
  [60, [1]], // ipVersion
  [150, [4]], // flowStartSeconds
  [151, [4]], // flowEndSeconds
  [152, [8]], // flowStartMilliseconds
  [153, [8]], // flowEndMilliseconds
  [154, [8]], // flowStartMicroseconds
  [155, [8]], // flowEndMicroseconds
  [156, [8]], // flowStartNanoseconds
  [157, [8]], // flowEndNanoseconds
  [21, [4]], // flowEndSysUpTime
  [22, [4]], // flowStartSysUpTime
  [160, [8]], // systemInitTimeMilliseconds
  [315, [60]], // dataLinkFrameSection
  [999, [2, 6]], // not a slot: skipped
  // Volume families chosen per template (plan.ts chooseVolume), read by both fills or finishVolume.
  [23, [4, 8]], // postOctetDeltaCount
  [24, [4]], // postPacketDeltaCount
  [352, [8]], // layer2OctetDeltaCount
  [231, [4]], // initiatorOctets (NSEL)
  [232, [4]], // responderOctets
  [298, [4]], // initiatorPackets
  [299, [4]], // responderPackets
  [85, [8]], // octetTotalCount
  [86, [8]], // packetTotalCount
  [148, [4]], // flowId
];

/** RFC 5103 reverse counters and label (PEN 29305): IPFIX only. */
const REVERSE: Field[] = [f(1, 8, 29305), f(2, 4, 29305), f(31, 3, 29305), f(85, 8, 29305)];

const fieldArb = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(...POOL).chain(([id, lens]) => fc.constantFrom(...lens).map((len): Field => f(id, len))) },
  { weight: 1, arbitrary: fc.constantFrom(...REVERSE) },
);

const caseArb = fc.record({
  fields: fc.array(fieldArb, { minLength: 1, maxLength: 14 }),
  records: fc.integer({ min: 1, max: 4 }),
  seed: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  v9: fc.boolean(),
  withAddresses: fc.boolean(),
});

/** Record bytes from the seed (deterministic, so a shrunk case replays). */
function recordBytes(length: number, count: number, seed: Uint8Array): Uint8Array {
  const out = new Uint8Array(length * count);
  for (let i = 0; i < out.length; i++) out[i] = (seed[i % seed.length]! * 31 + i * 7) & 0xff;
  return out;
}

function decodeAll(datagram: Uint8Array, withAddresses: boolean, compiled: boolean): FlowRecord[] {
  useCompiledFill(compiled);
  const r = decodeFlowDatagram(
    datagram,
    { exporterAddr: '192.0.2.1', exporterPort: 4739, receivedMs: Date.UTC(2025, 0, 1) },
    createFlowDecoderState(),
    { withAddresses },
  );
  return r.records.map((rec) => ({ ...rec }));
}

/** [src, dst] formatted from the record's address bytes, undefined when it has none. */
function addressesFromBytes(rec: FlowRecord): [string, string] | undefined {
  if (rec.addrLen === 0) return undefined;
  const fmt = rec.addrLen === 16 ? ipv6String : ipv4String;
  return [fmt(rec.addrBytes!, rec.srcAddrAt), fmt(rec.addrBytes!, rec.dstAddrAt)];
}

/** [srcAddr, dstAddr] when the record has both of one family (the address-bytes rule), else undefined. */
function addressesFromStrings(rec: FlowRecord): [string, string] | undefined {
  const { srcAddr, dstAddr } = rec;
  return srcAddr !== undefined && dstAddr !== undefined && srcAddr.includes(':') === dstAddr.includes(':') ? [srcAddr, dstAddr] : undefined;
}

afterEach(() => useCompiledFill(true));

describe('compiled fill = fillRecord', () => {
  it('gives identical records for random fixed-length templates', () => {
    fc.assert(
      fc.property(caseArb, ({ fields, records, seed, v9, withAddresses }) => {
        // NetFlow v9 has no enterprise fields: the reverse ones are IPFIX only.
        if (v9) fields = fields.filter((x) => x.pen === undefined);
        if (fields.length === 0) return;
        const length = fields.reduce((n, x) => n + x.length, 0);
        const body = recordBytes(length, records, seed);
        const datagram = v9
          ? v9Message({ records: 1 + records, sysUptimeMs: 3_600_000, unixSecs: 1_735_689_600 }, [
              v9TemplateFlowset([{ id: 256, fields }]),
              ipfixSet(256, body),
            ])
          : ipfixMessage({ domain: 1, exportSecs: 1_735_689_600 }, [ipfixTemplateSet([{ id: 256, fields }]), ipfixSet(256, body)]);
        const reference = decodeAll(datagram, withAddresses, false);
        const compiled = decodeAll(datagram, withAddresses, true);
        // Every record, none (no volume field: counted, not emitted) or up to one reverse record each (RFC 5103).
        expect(reference.length === 0 || (reference.length >= records && reference.length <= 2 * records)).toBe(true);
        expect(compiled).toEqual(reference);
        // The address bytes (compared above by content) are the datagram itself in both, and
        // say what the strings say.
        for (const [i, rec] of compiled.entries()) {
          expect(rec.addrBytes === datagram && reference[i]!.addrBytes === datagram).toBe(rec.addrLen !== 0);
          if (withAddresses) expect(addressesFromBytes(rec)).toEqual(addressesFromStrings(rec));
        }
      }),
      { numRuns: 1500 },
    );
  });
});
