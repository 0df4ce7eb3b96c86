/**
 * sFlow v5 datagrams (sFlow Version 5, section 5, struct sample_datagram_v5): the header,
 * then each sample dispatched by its data_format and skipped by its length when unknown.
 *
 * Error containment, decided so that one bad sample never costs the good ones:
 * - The datagram header (version, agent address, sub-agent, sequence, uptime, sample count)
 *   must decode, or decodeSflow throws DecodeError: there is nothing else to report.
 * - A sample whose length fits in the datagram but whose body is malformed (a record running
 *   past the sample, a record count over the cap, a fixed record shorter than its structure)
 *   is dropped whole, its error is added to `errors`, and decoding resumes at the next
 *   sample, because the sample's own length still says where that starts.
 * - A sample header that does not fit, or a sample length running past the datagram, ends
 *   the datagram with an error: nothing after it can be located. Samples decoded before it
 *   are kept. The same applies when the datagram holds fewer samples than its header says,
 *   so every truncation of a valid datagram is reported, never silently half-decoded.
 * - More samples than maxSamplesPerDatagram: the first ones are decoded, then a
 *   'limit-exceeded' error ends the datagram.
 */
import { DecodeError } from '../errors.js';
import { Reader } from '../reader.js';
import { emptyRecord, sessionKey } from '../record.js';
import type { WalkOptions } from '../packet/walker.js';
import { ipv4String, ipv6String } from '../packet/addr.js';
import {
  ADDRESS_IPV4,
  ADDRESS_IPV6,
  FORMAT_BITS,
  FORMAT_MASK,
  SAMPLE_COUNTERS,
  SAMPLE_COUNTERS_EXPANDED,
  SAMPLE_FLOW,
  SAMPLE_FLOW_EXPANDED,
  SFLOW_VERSION_5,
} from './constants.js';
import { xdrNext, type DatagramContext } from './context.js';
import { decodeCounterSample } from './counter-sample.js';
import { decodeFlowSample } from './flow-sample.js';
import { agentEntry, recordDatagram, type SflowState } from './state.js';
import {
  DEFAULT_MAX_RECORDS_PER_SAMPLE,
  DEFAULT_MAX_SAMPLES_PER_DATAGRAM,
  type SflowDatagramStats,
  type SflowDecodeResult,
  type SflowOptions,
} from './types.js';

/** Walk options by (innerHeaders, withAddresses, outerHeaders), made once: index 4i + 2a + o. */
const WALK_OPTIONS: readonly WalkOptions[] = [false, true].flatMap((inner) =>
  [false, true].flatMap((addresses) => [false, true].map((outer) => ({ inner, addresses, outer }))),
);

/** The exporter key of the previous datagram: one exporter usually sends many in a row. */
let lastAddr = '';
let lastPort = -1;
let lastKey = '';

function exporterKey(addr: string, port: number): string {
  if (port !== lastPort || addr !== lastAddr) {
    lastKey = sessionKey(addr, port);
    lastAddr = addr;
    lastPort = port;
  }
  return lastKey;
}

/** True while decodeSflow runs: its scratch state (flow-sample.ts) is not re-entrant. */
let busy = false;

/**
 * Decodes one sFlow v5 datagram received from exporterAddr:exporterPort (the UDP source).
 *
 * FlowRecord.exporter is sessionKey(exporterAddr, exporterPort), the UDP source, not the
 * agent address from the datagram: it is what every protocol uses for "exporter" (IPFIX
 * transport sessions), what the collector knows before decoding (per-exporter error counts
 * for undecodable datagrams, sharding datagrams to workers by exporter), and it cannot be
 * chosen by the payload. The agent address and sub-agent id are still reported (result.agent,
 * FlowRecord.domain = sub-agent id) and key the sequence state, as the spec scopes sequence
 * numbers by them.
 */
export function decodeSflow(
  bytes: Uint8Array,
  exporterAddr: string,
  exporterPort: number,
  state: SflowState,
  opts?: SflowOptions,
): SflowDecodeResult {
  if (busy) throw new Error('decodeSflow called from its own onRecord sink (the decoder is not re-entrant)');
  busy = true;
  try {
    return decode(bytes, exporterAddr, exporterPort, state, opts);
  } finally {
    busy = false;
  }
}

function decode(
  bytes: Uint8Array,
  exporterAddr: string,
  exporterPort: number,
  state: SflowState,
  opts: SflowOptions | undefined,
): SflowDecodeResult {
  const r = new Reader(bytes);
  const version = r.u32('version');
  if (version !== SFLOW_VERSION_5) throw new DecodeError('bad-version', `sFlow version ${version}, expected 5`, 0);
  const addressType = r.u32('agent address type');
  let agent: string;
  if (addressType === ADDRESS_IPV4) {
    r.need(4, 'agent address');
    agent = ipv4String(bytes, r.pos);
    r.pos += 4;
  } else if (addressType === ADDRESS_IPV6) {
    r.need(16, 'agent address');
    agent = ipv6String(bytes, r.pos);
    r.pos += 16;
  } else {
    throw new DecodeError('bad-address-type', `agent address type ${addressType}`, 4);
  }
  const subAgent = r.u32('sub_agent_id');
  const sequence = r.u32('sequence_number');
  const uptimeMs = r.u32('uptime');
  const sampleCount = r.u32('sample count');

  const sink = opts?.onRecord;
  const stats: SflowDatagramStats = {
    samples: 0,
    flowSamples: 0,
    counterSamples: 0,
    skipped: { samples: 0, flowRecords: 0, counterRecords: 0, headerProtocols: 0 },
    lostDatagrams: 0,
    lostSamples: 0,
  };
  if (sink !== undefined) stats.records = 0;
  const result: SflowDecodeResult = { agent, subAgent, sequence, uptimeMs, records: [], counters: [], stats, errors: [] };
  const entry = agentEntry(state, agent, subAgent);
  result.stats.lostDatagrams = recordDatagram(entry, sequence, uptimeMs);

  const exporter = exporterKey(exporterAddr, exporterPort);
  const withFields = opts?.withFields === true;
  const withAddresses = opts?.withAddresses !== false;
  const inner = opts?.innerHeaders === true;
  const ctx: DatagramContext = {
    state,
    agentEntry: entry,
    exporter,
    agent,
    subAgent,
    maxRecords: opts?.maxRecordsPerSample ?? DEFAULT_MAX_RECORDS_PER_SAMPLE,
    walkOptions: WALK_OPTIONS[(inner ? 4 : 0) + (withAddresses ? 2 : 0) + (opts?.outerHeaders === true ? 1 : 0)],
    withFields,
    withAddresses,
    sink,
    // One record per datagram, refilled for each sample. A young object, not a module-level
    // one: the boxed numbers stored into it then need no old-to-young write barrier.
    shared: sink !== undefined && !withFields ? emptyRecord('sflow', exporter, subAgent) : undefined,
    result,
  };
  decodeSamples(r, sampleCount, opts?.maxSamplesPerDatagram ?? DEFAULT_MAX_SAMPLES_PER_DATAGRAM, ctx);
  return result;
}

function decodeSamples(r: Reader, count: number, maxSamples: number, ctx: DatagramContext): void {
  const { result } = ctx;
  const datagramEnd = r.end;
  for (let i = 0; i < count; i++) {
    if (i >= maxSamples) {
      result.errors.push(new DecodeError('limit-exceeded', `datagram has ${count} samples, cap ${maxSamples}`, r.pos));
      return;
    }
    if (r.remaining < 8) {
      result.errors.push(new DecodeError('truncated', `sample ${i + 1} of ${count}: header needs 8 bytes, ${r.remaining} left`, r.pos));
      return;
    }
    const format = r.u32('sample data_format');
    const len = r.u32('sample length');
    if (len > r.remaining) {
      result.errors.push(new DecodeError('truncated', `sample ${i + 1} of ${count}: length ${len}, ${r.remaining} bytes left`, r.pos - 4));
      return;
    }
    result.stats.samples++;
    const start = r.pos;
    r.end = start + len;
    try {
      decodeSample(r, format, ctx);
    } catch (err) {
      // Anything but a DecodeError is a bug and must surface, not be counted as bad input.
      if (!(err instanceof DecodeError)) throw err;
      result.errors.push(err);
    }
    r.end = datagramEnd;
    r.pos = xdrNext(start, len, datagramEnd);
  }
}

function decodeSample(r: Reader, dataFormat: number, ctx: DatagramContext): void {
  const stats = ctx.result.stats;
  if (dataFormat >>> FORMAT_BITS !== 0) {
    stats.skipped.samples++;
    return;
  }
  switch (dataFormat & FORMAT_MASK) {
    case SAMPLE_FLOW:
      stats.flowSamples++;
      decodeFlowSample(r, false, ctx);
      return;
    case SAMPLE_FLOW_EXPANDED:
      stats.flowSamples++;
      decodeFlowSample(r, true, ctx);
      return;
    case SAMPLE_COUNTERS:
      stats.counterSamples++;
      decodeCounterSample(r, false, ctx);
      return;
    case SAMPLE_COUNTERS_EXPANDED:
      stats.counterSamples++;
      decodeCounterSample(r, true, ctx);
      return;
    default:
      stats.skipped.samples++;
  }
}
