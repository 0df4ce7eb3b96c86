/**
 * One pass over a FlowMessage's wire format (protobufjs's Reader), before protobufjs decodes
 * it: every tag and length checked against the bytes left and against the schema's wire
 * types, so that a bad message is a typed DecodeError rather than whatever protobufjs would
 * make of it (it reads a known field by its declared type whatever wire type arrived). The
 * same pass notes where the addresses are (FlowRecord.addrBytes points there) and reads the
 * two fields the stream input needs before decoding: sampler_address and time_received_ns.
 */
import protobuf from 'protobufjs';
import { DecodeError } from '../errors.js';
import { FIELD, FlowMessageType, WIRE_TYPES } from './schema.js';

/** Where scanFlowMessage found things (offsets into the message; length 0 when absent). */
export interface FlowMessageScan {
  samplerAt: number;
  samplerLen: number;
  srcAt: number;
  srcLen: number;
  dstAt: number;
  dstLen: number;
  /** time_received_ns as a number (0 when absent). */
  timeReceivedNs: number;
}

export function emptyScan(): FlowMessageScan {
  return { samplerAt: 0, samplerLen: 0, srcAt: 0, srcLen: 0, dstAt: 0, dstLen: 0, timeReceivedNs: 0 };
}

const SRC_ADDR = 6;
const DST_ADDR = 7;
/** A varint is at most 10 bytes (64 bits, 7 per byte). */
const MAX_VARINT = 10;

const FIELD_NAMES = new Map(FlowMessageType.fieldsArray.map((f) => [f.id, f.name]));

/** A uint64 from protobufjs (a Long when the long package is installed, else a number). */
export function longToNumber(v: number | protobuf.Long): number {
  return typeof v === 'number' ? v : (v.high >>> 0) * 4294967296 + (v.low >>> 0);
}

/** protobufjs's exceptions as the catalogue's codes; anything else is a bug and is rethrown. */
export function wireError(err: unknown, pos: number): DecodeError {
  if (err instanceof DecodeError) return err;
  if (err instanceof RangeError && err.message.startsWith('index out of range'))
    return new DecodeError('truncated', `FlowMessage ends inside a field`, pos);
  if (err instanceof Error && /^(invalid|illegal|max depth)/.test(err.message))
    return new DecodeError('record-malformed', `FlowMessage: ${err.message}`, pos);
  throw err;
}

/** Varints of a packed repeated field must fill its bytes exactly. */
function checkPacked(r: protobuf.Reader, end: number, field: number): void {
  while (r.pos < end) {
    const start = r.pos;
    r.skip();
    if (r.pos > end || r.pos - start > MAX_VARINT)
      throw new DecodeError(
        'record-malformed',
        `packed field ${field} (${FIELD_NAMES.get(field) ?? '?'}) has a varint crossing its end`,
        start,
      );
  }
}

/**
 * Checks one FlowMessage and fills `scan`; returns the first problem (nothing is decoded from
 * a message that has one). Unknown field numbers are skipped (a newer goflow2 may add some).
 */
export function scanFlowMessage(msg: Uint8Array, scan: FlowMessageScan): DecodeError | undefined {
  scan.samplerLen = scan.srcLen = scan.dstLen = 0;
  scan.timeReceivedNs = 0;
  const r = protobuf.Reader.create(msg);
  let at = 0;
  try {
    while (r.pos < r.len) {
      at = r.pos;
      const tag = r.uint32();
      const field = tag >>> 3;
      const wt = tag & 7;
      if (r.pos - at > 5) return new DecodeError('record-malformed', `tag varint of ${r.pos - at} bytes`, at);
      if (field === 0) return new DecodeError('record-malformed', 'field number 0', at);
      if (wt !== 0 && wt !== 1 && wt !== 2 && wt !== 5)
        return new DecodeError('record-malformed', `field ${field}: wire type ${wt} (groups and 6/7 are not FlowMessage wire types)`, at);
      const want = WIRE_TYPES.get(field);
      if (want !== undefined && !want.includes(wt))
        return new DecodeError(
          'record-malformed',
          `field ${field} (${FIELD_NAMES.get(field)}) has wire type ${wt}, its type needs ${want.join(' or ')}`,
          at,
        );
      if (wt === 0) {
        const v = r.pos;
        if (field === FIELD.timeReceivedNs) scan.timeReceivedNs = longToNumber(r.uint64() as number | protobuf.Long);
        else r.skip();
        if (r.pos - v > MAX_VARINT) return new DecodeError('record-malformed', `field ${field}: varint of ${r.pos - v} bytes`, v);
      } else if (wt === 1) r.skip(8);
      else if (wt === 5) r.skip(4);
      else {
        const l = r.pos;
        const len = r.uint32();
        // uint32() keeps the low 32 bits of a longer varint: a length that needs more is wrong.
        if (r.pos - l > 5 || (r.pos - l === 5 && msg[l + 4]! > 0x0f))
          return new DecodeError('bad-length', `field ${field}: length varint over 32 bits`, l);
        if (len > r.len - r.pos)
          return new DecodeError(
            'truncated',
            `field ${field} (${FIELD_NAMES.get(field) ?? 'unknown'}): length ${len}, ${r.len - r.pos} bytes left`,
            l,
          );
        const start = r.pos;
        if (want !== undefined && want.length === 2) checkPacked(r, start + len, field);
        else r.skip(len);
        if (field === SRC_ADDR) {
          scan.srcAt = start;
          scan.srcLen = len;
        } else if (field === DST_ADDR) {
          scan.dstAt = start;
          scan.dstLen = len;
        } else if (field === FIELD.samplerAddress) {
          scan.samplerAt = start;
          scan.samplerLen = len;
        }
      }
    }
  } catch (err) {
    return wireError(err, at);
  }
  return undefined;
}
