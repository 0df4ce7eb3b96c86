/**
 * NetFlow v9 export packet decoding (RFC 3954), sharing templates, plans and set handling
 * with IPFIX. Differences that matter here:
 *  - 20-octet header with sysUptime and unix seconds (section 5.1); the source id plays the
 *    observation domain; the sequence number counts export packets, not records;
 *  - no message length: the flowsets run to the end of the datagram, so the structural
 *    check is that the flowset chain tiles the datagram. An all-zero tail after the last
 *    flowset is padding (Cisco ACI pads its template datagrams with 64 zero octets, PAN-OS
 *    8.1 its data datagrams with 1,216): counted in `paddingOctets`, not an error;
 *  - template flowset 0, options template flowset 1 with scope/option lengths in octets;
 *  - no withdrawal. RFC 3954 has no variable-length fields, but H3C NetStream sends field
 *    length 65535 as IPFIX does: such fields are decoded as IPFIX varlen (RFC 7011 7).
 * Containment is the same as IPFIX (see ipfix.ts): a chain that breaks (a flowset running
 * past the datagram, a non-zero tail too short or with a length below 4) keeps the complete
 * flowsets before the break and reports the break. The header's record count is only
 * checked one way: when every flowset was decoded and fewer records were found than the
 * count says, a 'truncated' error is reported (the datagram lost whole flowsets); more
 * records than the count is tolerated, since exporters disagree about what it counts.
 */
import { DecodeError } from '../errors.js';
import { Reader, u32 } from '../reader.js';
import { allZero, handleDataSet, handleTemplateOps, openMessage, refreshTemplates } from './sets.js';
import { countSequence } from './sequence.js';
import type { FlowDecoderState } from './state.js';
import { MIN_DATA_SET_ID, parseV9OptionsFlowset, parseV9TemplateFlowset, V9_OPTIONS_FLOWSET, V9_TEMPLATE_FLOWSET } from './templates.js';
import type { FlowDecodeContext, FlowDecodeOptions, FlowDecodeResult } from './types.js';

export const NETFLOW9_VERSION = 9;
export const NETFLOW9_HEADER_LENGTH = 20;
const FLOWSET_HEADER_LENGTH = 4;

export function decodeNetflow9(
  b: Uint8Array,
  ctx: FlowDecodeContext,
  state: FlowDecoderState,
  opts: FlowDecodeOptions,
  result: FlowDecodeResult,
): void {
  result.stats.version = NETFLOW9_VERSION;
  if (b.length < NETFLOW9_HEADER_LENGTH) {
    throw new DecodeError('truncated', `NetFlow v9 header needs ${NETFLOW9_HEADER_LENGTH} octets, got ${b.length}`, 0);
  }
  // Header (RFC 3954 5.1): version, count, sysUptime, unix secs, sequence, source id.
  const headerCount = (b[2]! << 8) | b[3]!;
  const sysUptimeMs = u32(b, 4);
  const unixSecs = u32(b, 8);
  const seq = u32(b, 12);
  const sourceId = u32(b, 16);

  // Pass 1: the flowset chain must tile the datagram. `end` becomes the end of the complete
  // flowsets; `broken` says why the chain stopped short of the datagram's end (not padding).
  let end = b.length;
  let broken: DecodeError | undefined;
  for (let p = NETFLOW9_HEADER_LENGTH; p < end;) {
    const short = end - p < FLOWSET_HEADER_LENGTH;
    const len = short ? 0 : (b[p + 2]! << 8) | b[p + 3]!;
    if (short || len < FLOWSET_HEADER_LENGTH) {
      // A flowset header cannot be shorter than 4 octets (RFC 3954 5.2): an all-zero rest is
      // padding after the last flowset; anything else is garbage that ends the chain.
      if (allZero(b, p, end)) result.stats.paddingOctets = end - p;
      else if (short) broken = new DecodeError('truncated', `${end - p} octets after the last flowset`, p);
      else broken = new DecodeError('bad-length', `flowset length ${len}`, p + 2);
      end = p;
      break;
    }
    if (p + len > end) {
      broken = new DecodeError('truncated', `flowset length ${len} past datagram end ${end}`, p + 2);
      end = p;
      break;
    }
    p += len;
  }
  // Nothing complete before the break: rejected whole, before any state changes.
  if (broken !== undefined && end === NETFLOW9_HEADER_LENGTH) throw broken;
  if (result.stats.paddingOctets > 0) state.totals.paddedDatagrams++;

  const m = openMessage(state, ctx, opts, result, 'netflow9', sourceId, unixSecs, sysUptimeMs);

  // Pass 2. `found` counts records of every kind for the header count check (-1: unknown).
  let found = 0;
  for (let p = NETFLOW9_HEADER_LENGTH; p < end;) {
    const setId = (b[p]! << 8) | b[p + 1]!;
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    const start = p + FLOWSET_HEADER_LENGTH;
    const setEnd = p + len;
    p = setEnd;
    result.stats.sets++;
    const mark = result.records.length;
    try {
      if (setId === V9_TEMPLATE_FLOWSET || setId === V9_OPTIONS_FLOWSET) {
        // RFC 3954 5.2 / 6.1: template records start with 4 octets, options templates with 6.
        const options = setId === V9_OPTIONS_FLOWSET;
        let n = refreshTemplates(m, b, start, setEnd, options ? 'options' : 'data', options ? 6 : 4);
        if (n < 0) {
          const fr = new Reader(b, start, setEnd);
          const ops = options ? parseV9OptionsFlowset(fr, state.limits) : parseV9TemplateFlowset(fr, state.limits);
          n = ops.length;
          handleTemplateOps(m, ops);
        }
        if (found >= 0) found += n;
      } else if (setId >= MIN_DATA_SET_ID) {
        const n = handleDataSet(m, setId, b, start, setEnd);
        found = n < 0 || found < 0 ? -1 : found + n;
      } else {
        // RFC 3954 5.3: flowset ids 2..255 are reserved.
        result.errors.push(new DecodeError('bad-set-id', `flowset id ${setId} skipped`, p - len));
        found = -1;
      }
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      if (setId >= MIN_DATA_SET_ID) result.records.length = mark;
      result.errors.push(e);
      result.stopped = true;
      found = -1;
      break;
    }
  }
  if (broken !== undefined && !result.stopped) {
    // The complete flowsets before the break were decoded; the break itself is counted.
    result.errors.push(broken);
    result.stopped = true;
    found = -1;
  }
  if (found >= 0 && found < headerCount) {
    result.errors.push(new DecodeError('truncated', `header count ${headerCount}, ${found} records present`, 2));
  }

  // RFC 3954 5.1: the sequence number counts export packets from this source id.
  countSequence(m.d.sequence, seq, 1, 'datagrams', result.stats);
}
