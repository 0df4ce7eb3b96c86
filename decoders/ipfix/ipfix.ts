/**
 * IPFIX message decoding (RFC 7011).
 *
 * Containment, in two passes:
 *  1. Structure: the 16-octet header and the chain of set headers must exactly tile the
 *     message length. A datagram that fails this (truncated, a set length past the end, a
 *     set shorter than its header) is rejected whole, before any state changes: UDP
 *     delivers datagrams whole, so a broken chain means corruption and no set in it can be
 *     trusted. This is also what makes every truncation of a valid datagram an error
 *     rather than a half-decoded datagram.
 *  2. Sets, in order. Each set is atomic: a set that fails (a malformed template record, a
 *     variable-length field running past its set, a cap hit) contributes nothing, decoding
 *     of the datagram stops there, and the records and templates of earlier sets are kept.
 *     A reserved set id is reported and skipped by its length.
 */
import { DecodeError } from '../errors.js';
import { Reader, u32 } from '../reader.js';
import { handleDataSet, handleTemplateOps, openMessage, refreshTemplates } from './sets.js';
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
  if (length > b.length) throw new DecodeError('truncated', `message length ${length} > ${b.length} octets received`, 2);

  // Pass 1: the set chain must tile the message exactly.
  for (let p = IPFIX_HEADER_LENGTH; p < length;) {
    if (length - p < SET_HEADER_LENGTH) throw new DecodeError('truncated', `${length - p} octets after the last set`, p);
    const setLen = (b[p + 2]! << 8) | b[p + 3]!;
    if (setLen < SET_HEADER_LENGTH) throw new DecodeError('bad-length', `set length ${setLen}`, p + 2);
    if (p + setLen > length) throw new DecodeError('truncated', `set length ${setLen} past message end ${length}`, p + 2);
    p += setLen;
  }
  if (length < b.length) {
    // Octets after the message: reported, the message itself is fine.
    result.errors.push(new DecodeError('bad-length', `${b.length - length} octets after the IPFIX message`, length));
  }

  const m = openMessage(state, ctx, opts, result, 'ipfix', domain, exportSecs, -1);

  // Pass 2: sets in order. `count` is the number of data records (options ones included,
  // RFC 7011 3.1) for the sequence check, -1 once any set's count is unknown.
  let count = 0;
  for (let p = IPFIX_HEADER_LENGTH; p < length;) {
    const setId = (b[p]! << 8) | b[p + 1]!;
    const setLen = (b[p + 2]! << 8) | b[p + 3]!;
    const start = p + SET_HEADER_LENGTH;
    const end = p + setLen;
    p = end;
    result.stats.sets++;
    const mark = result.records.length;
    try {
      if (setId === IPFIX_TEMPLATE_SET || setId === IPFIX_OPTIONS_TEMPLATE_SET) {
        // RFC 7011 3.4.1 / 3.4.2.2: template records start with a 4-octet header.
        const kind = setId === IPFIX_TEMPLATE_SET ? 'data' : 'options';
        if (refreshTemplates(m, b, start, end, kind, 4) < 0) {
          handleTemplateOps(m, parseIpfixTemplateSet(new Reader(b, start, end), setId, state.limits));
        }
      } else if (setId >= MIN_DATA_SET_ID) {
        const n = handleDataSet(m, setId, b, start, end);
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

  countSequence(m.d.sequence, seq, count, 'records', result.stats);
}
