/**
 * Counter samples (sFlow v5 section 5, struct counters_sample, format 2, and struct
 * counters_sample_expanded, format 4). Only generic interface counters (counter_data
 * format 1, struct if_counters) are decoded; every other counter record (Ethernet, VLAN,
 * processor, host, vendor...) is skipped by its length and counted.
 */
import { DecodeError } from '../errors.js';
import type { Reader } from '../reader.js';
import {
  COUNTERS_GENERIC_INTERFACE,
  FORMAT_BITS,
  FORMAT_MASK,
  IF_COUNTERS_LEN,
  SOURCE_INDEX_MASK,
  SOURCE_TYPE_SHIFT,
} from './constants.js';
import { xdrNext, type DatagramContext } from './context.js';
import { advanceSequence, sourceEntry } from './state.js';
import type { SflowInterfaceCounters } from './types.js';

/** Decodes the counter sample spanning r.pos..r.end. Throws DecodeError when malformed. */
export function decodeCounterSample(r: Reader, expanded: boolean, ctx: DatagramContext): void {
  const sequence = r.u32('counter sample sequence_number');
  let sourceIdType: number;
  let sourceIdIndex: number;
  if (expanded) {
    sourceIdType = r.u32('source_id_type');
    sourceIdIndex = r.u32('source_id_index');
  } else {
    const sid = r.u32('source_id');
    sourceIdType = sid >>> SOURCE_TYPE_SHIFT;
    sourceIdIndex = sid & SOURCE_INDEX_MASK;
  }
  const count = r.u32('counter record count');
  if (count > ctx.maxRecords) {
    throw new DecodeError('limit-exceeded', `counter sample has ${count} records, cap ${ctx.maxRecords}`, r.pos - 4);
  }
  // Decode every record before publishing any, so a malformed sample adds nothing.
  const found: SflowInterfaceCounters[] = [];
  const sampleEnd = r.end;
  for (let i = 0; i < count; i++) {
    const format = r.u32('counter record data_format');
    const len = r.u32('counter record length');
    r.need(len, 'counter record data');
    const start = r.pos;
    r.end = start + len;
    if (format >>> FORMAT_BITS === 0 && (format & FORMAT_MASK) === COUNTERS_GENERIC_INTERFACE) {
      if (len < IF_COUNTERS_LEN) throw new DecodeError('bad-length', `if_counters length ${len}`, start);
      found.push(readIfCounters(r, ctx, sequence, sourceIdType, sourceIdIndex));
    } else {
      ctx.result.stats.skipped.counterRecords++;
    }
    r.end = sampleEnd;
    r.pos = xdrNext(start, len, sampleEnd);
  }
  const src = sourceEntry(ctx.state, ctx.agentEntry, 'counters', sourceIdType, sourceIdIndex);
  ctx.result.stats.lostSamples += advanceSequence(src, sequence);
  for (const c of found) ctx.result.counters.push(c);
}

/** struct if_counters, field order as in the spec (RFC 2863 ifTable / ifXTable names). */
function readIfCounters(
  r: Reader,
  ctx: DatagramContext,
  sequence: number,
  sourceIdType: number,
  sourceIdIndex: number,
): SflowInterfaceCounters {
  const ifIndex = r.u32('ifIndex');
  const ifType = r.u32('ifType');
  const ifSpeed = r.u64('ifSpeed');
  const ifDirection = r.u32('ifDirection');
  const ifStatus = r.u32('ifStatus');
  const inOctets = r.u64('ifInOctets');
  const inPackets = r.u32('ifInUcastPkts') + r.u32('ifInMulticastPkts') + r.u32('ifInBroadcastPkts');
  const inDiscards = r.u32('ifInDiscards');
  const inErrors = r.u32('ifInErrors');
  r.skip(4, 'ifInUnknownProtos');
  const outOctets = r.u64('ifOutOctets');
  const outPackets = r.u32('ifOutUcastPkts') + r.u32('ifOutMulticastPkts') + r.u32('ifOutBroadcastPkts');
  const outDiscards = r.u32('ifOutDiscards');
  const outErrors = r.u32('ifOutErrors');
  // ifPromiscuousMode (the last word) is not needed.
  return {
    exporter: ctx.exporter,
    agent: ctx.agent,
    subAgent: ctx.subAgent,
    sequence,
    sourceIdType,
    sourceIdIndex,
    ifIndex,
    ifType,
    ifSpeed,
    ifDirection,
    ifStatus,
    inOctets,
    inPackets,
    inDiscards,
    inErrors,
    outOctets,
    outPackets,
    outDiscards,
    outErrors,
  };
}
