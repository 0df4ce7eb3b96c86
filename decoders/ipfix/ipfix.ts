/**
 * IPFIX message decoding (RFC 7011).
 *
 * Containment, in two passes:
 *  1. Structure: the 16-octet header, then the chain of set headers, which must tile the
 *     message length. The chain is walked up to the first break: a set length past the
 *     message end or past the octets received (telegraf issue 14370, vflow's OVS capture),
 *     a set shorter than its header, a tail too short for a set header. The complete sets
 *     before the break are kept and the break is reported ('truncated' / 'bad-length') as
 *     the error that ends the datagram, as goflow2 and tshark do; a datagram whose very
 *     first set is broken is rejected whole, before any state changes. An all-zero tail
 *     (after the last set, or after the message) is exporter padding: counted in
 *     `paddingOctets`, not an error. No set is ever half-decoded, so every truncation of a
 *     valid datagram is still either an error or (cut in its padding) padding.
 *  2. Sets, in order. Each set is atomic: a set that fails (a malformed template record, a
 *     variable-length field running past its set, a cap hit) contributes nothing, decoding
 *     of the datagram stops there, and the records and templates of earlier sets are kept.
 *     A reserved set id is reported and skipped by its length.
 */
import { DecodeError } from '../errors.js';
import { Reader, u32 } from '../reader.js';
import { allZero, handleDataSet, handleTemplateOps, openMessage, refreshTemplates } from './sets.js';
import { countSequence } from './sequence.js';
import type { FlowDecoderState } from './state.js';
import { IPFIX_OPTIONS_TEMPLATE_SET, IPFIX_TEMPLATE_SET, MIN_DATA_SET_ID, parseIpfixTemplateSet } from './templates.js';
import type { FlowDecodeContext, FlowDecodeOptions, FlowDecodeResult } from './types.js';

/** RFC 7011 section 3.1. */
export const IPFIX_VERSION = 10;
export const IPFIX_HEADER_LENGTH = 16;
/** RFC 7011 section 3.3.2: set header (id, length). */
const SET_HEADER_LENGTH = 4;

export function decodeIpfix(
  b: Uint8Array,
  ctx: FlowDecodeContext,
  state: FlowDecoderState,
  opts: FlowDecodeOptions,
  result: FlowDecodeResult,
): void {
  result.stats.version = IPFIX_VERSION;
  if (b.length < IPFIX_HEADER_LENGTH) {
    throw new DecodeError('truncated', `IPFIX header needs ${IPFIX_HEADER_LENGTH} octets, got ${b.length}`, 0);
  }
  // Header (RFC 7011 3.1): version, length, export time, sequence number, domain.
  const length = (b[2]! << 8) | b[3]!;
  const exportSecs = u32(b, 4);
  const seq = u32(b, 8);
  const domain = u32(b, 12);
  if (length < IPFIX_HEADER_LENGTH) throw new DecodeError('bad-length', `message length ${length} < header`, 2);
  // Pass 1: the set chain must tile the message. `end` becomes the end of the complete sets;
  // `broken` says why the chain stopped short of the message length (padding aside).
  const avail = length <= b.length ? length : b.length;
  let end = avail;
  let broken: DecodeError | undefined;
  for (let p = IPFIX_HEADER_LENGTH; p < avail;) {
    const short = avail - p < SET_HEADER_LENGTH;
    const setLen = short ? 0 : (b[p + 2]! << 8) | b[p + 3]!;
    if (short || setLen < SET_HEADER_LENGTH) {
      // No set is shorter than its header (RFC 7011 3.3.2): an all-zero rest of a whole
      // message is padding after the last set, anything else ends the chain.
      if (avail === length && allZero(b, p, avail)) result.stats.paddingOctets += avail - p;
      else if (short) broken = new DecodeError('truncated', `${avail - p} octets after the last set`, p);
      else broken = new DecodeError('bad-length', `set length ${setLen}`, p + 2);
      end = p;
      break;
    }
    if (p + setLen > avail) {
      broken =
        avail === length
          ? new DecodeError('truncated', `set length ${setLen} past message end ${length}`, p + 2)
          : new DecodeError('truncated', `set length ${setLen} past the ${b.length} octets received`, p + 2);
      end = p;
      break;
    }
    p += setLen;
  }
  if (broken === undefined && avail < length) {
    broken = new DecodeError('truncated', `message length ${length} > ${b.length} octets received`, 2);
  }
  // Nothing complete before the break: rejected whole, before any state changes.
  if (broken !== undefined && end === IPFIX_HEADER_LENGTH) throw broken;
  if (length < b.length && broken === undefined) {
    // Octets after a whole message: zeros are padding; anything else is reported, the
    // message itself is fine. (After a broken chain they are the rest of the broken set.)
    if (allZero(b, length, b.length)) result.stats.paddingOctets += b.length - length;
    else result.errors.push(new DecodeError('bad-length', `${b.length - length} octets after the IPFIX message`, length));
  }
  if (result.stats.paddingOctets > 0) state.totals.paddedDatagrams++;

  const m = openMessage(state, ctx, opts, result, 'ipfix', domain, exportSecs, -1);

  // Pass 2: sets in order. `count` is the number of data records (options ones included,
  // RFC 7011 3.1) for the sequence check, -1 once any set's count is unknown.
  let count = 0;
  for (let p = IPFIX_HEADER_LENGTH; p < end;) {
    const setId = (b[p]! << 8) | b[p + 1]!;
    const setLen = (b[p + 2]! << 8) | b[p + 3]!;
    const start = p + SET_HEADER_LENGTH;
    const setEnd = p + setLen;
    p = setEnd;
    result.stats.sets++;
    const mark = result.records.length;
    try {
      if (setId === IPFIX_TEMPLATE_SET || setId === IPFIX_OPTIONS_TEMPLATE_SET) {
        // RFC 7011 3.4.1 / 3.4.2.2: template records start with a 4-octet header.
        const kind = setId === IPFIX_TEMPLATE_SET ? 'data' : 'options';
        if (refreshTemplates(m, b, start, setEnd, kind, 4) < 0) {
          handleTemplateOps(m, parseIpfixTemplateSet(new Reader(b, start, setEnd), setId, state.limits));
        }
      } else if (setId >= MIN_DATA_SET_ID) {
        const n = handleDataSet(m, setId, b, start, setEnd);
        count = n < 0 || count < 0 ? -1 : count + n;
      } else {
        // RFC 7011 3.3.2: 0 and 1 are not used (they are v9's), 4..255 reserved.
        result.errors.push(new DecodeError('bad-set-id', `set id ${setId} skipped`, p - setLen));
      }
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      // Drop what the failing set produced (replayed records of a template set stay: they
      // belong to earlier datagrams and were complete).
      if (setId >= MIN_DATA_SET_ID) result.records.length = mark;
      result.errors.push(e);
      result.stopped = true;
      count = -1;
      break;
    }
  }

  if (broken !== undefined && !result.stopped) {
    // The complete sets before the break were decoded; the break itself is counted.
    result.errors.push(broken);
    result.stopped = true;
    count = -1;
  }

  countSequence(m.d.sequence, seq, count, 'records', result.stats);
}
