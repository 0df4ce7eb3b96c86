/**
 * A goflow2 writer for tests: FlowMessages encoded with protobufjs from the collector's own
 * schema (decoders/goflow2/schema.ts), framed as `goflow2 -format=bin` frames them (varint
 * length, then the message: protobufjs encodeDelimited), and FlowRecords turned into the
 * FlowMessage goflow2 would have written for them (the corpus conversion).
 */
import { isIPv4 } from 'node:net';
import { ETYPE_IPV4, ETYPE_IPV6 } from '../../decoders/goflow2/decoder.js';
import { FlowMessageType } from '../../decoders/goflow2/schema.js';
import type { FlowProtocol, FlowRecord } from '../../decoders/record.js';
import { ingestDecoderOptions } from '../../src/commands/ingest.js';
import { decodeCaptures } from '../../src/ingest/captures.js';
import { DatagramDecoder } from '../../src/pipeline/decoder.js';
import { ipv4, ipv6 } from '../builders/ipfix.js';

/** FlowMessage fields by goflow2's names; uint64 as number or decimal string (exact ns). */
export type FlowMessageFields = Record<string, unknown>;

/** One message, unframed. */
export function encodeFlowMessage(fields: FlowMessageFields): Uint8Array {
  return FlowMessageType.encode(toMessage(fields)).finish();
}

/**
 * Messages as `goflow2 -format=bin -transport=file` writes them: each prefixed with its length
 * as a varint, then the file transport's separator (-transport.file.sep: a newline by default).
 */
export function encodeStream(messages: readonly FlowMessageFields[], separator = '\n'): Buffer {
  const sep = Buffer.from(separator);
  return Buffer.concat(messages.flatMap((m) => [FlowMessageType.encodeDelimited(toMessage(m)).finish(), sep]));
}

/** The fields as a protobufjs message; a name the schema does not have is a test bug. */
function toMessage(fields: FlowMessageFields) {
  for (const k of Object.keys(fields)) if (!(k in FlowMessageType.fields)) throw new Error(`FlowMessage has no field ${k}`);
  const m = FlowMessageType.fromObject(fields);
  const err = FlowMessageType.verify(m);
  if (err) throw new Error(`bad test FlowMessage: ${err}`);
  return m;
}

/** An address in text form as goflow2 carries it: 4 or 16 bytes (the IPFIX builder's parsers). */
export function addressBytes(text: string): Uint8Array {
  if (isIPv4(text)) return ipv4(text);
  // ::ffff:a.b.c.d: the dotted tail as two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (!v4) return ipv6(text);
  const b = ipv4(v4[1]!);
  return ipv6(`${text.slice(0, v4.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`);
}

const FLOW_TYPE: Record<FlowProtocol, number> = { sflow: 1, netflow5: 2, netflow9: 3, ipfix: 4, firefly: 0, goflow2: 0 };

/** ms (possibly fractional, to the µs) -> ns as an exact decimal string. */
export function msToNs(ms: number): string {
  return (BigInt(Math.round(ms * 1000)) * 1000n).toString();
}

/**
 * The FlowMessage goflow2 would write for a record (decoded with addresses) received at
 * `receivedMs` from `exporterAddr`: unscaled counts with their sampling rate (0 when nobody
 * stated one), etype from the IP version, the label for IPv6 only.
 */
export function recordToMessage(rec: FlowRecord, receivedMs: number, exporterAddr: string): FlowMessageFields {
  const m: FlowMessageFields = {
    type: FLOW_TYPE[rec.protocol],
    time_received_ns: msToNs(receivedMs),
    sampling_rate: rec.samplingSource === 'unknown' ? 0 : rec.samplingRate,
    sampler_address: addressBytes(exporterAddr),
    bytes: rec.bytes,
    packets: rec.packets,
    etype: rec.ipVersion === 4 ? ETYPE_IPV4 : rec.ipVersion === 6 ? ETYPE_IPV6 : 0,
    ipv6_flow_label: rec.ipVersion === 6 ? (rec.flowLabel ?? 0) : 0,
    in_if: rec.inIf ?? 0,
    out_if: rec.outIf ?? 0,
    proto: rec.ipProtocol ?? 0,
    src_port: rec.srcPort ?? 0,
    dst_port: rec.dstPort ?? 0,
    observation_domain_id: rec.domain,
  };
  if (rec.srcAddr !== undefined) m.src_addr = addressBytes(rec.srcAddr);
  if (rec.dstAddr !== undefined) m.dst_addr = addressBytes(rec.dstAddr);
  if (rec.startMs !== undefined) m.time_flow_start_ns = msToNs(rec.startMs);
  if (rec.endMs !== undefined) m.time_flow_end_ns = msToNs(rec.endMs);
  return m;
}

/** A capture as goflow2 would have written its records: one FlowMessage per record, framed. */
export function captureToGoflow2(pcap: string): Buffer {
  const decoder = new DatagramDecoder({ ...ingestDecoderOptions(), withAddresses: true });
  const messages: FlowMessageFields[] = [];
  decodeCaptures(
    [pcap],
    decoder,
    () => {},
    (rec, _file, _frame, receivedMs, exporterAddr) => messages.push(recordToMessage(rec, receivedMs, exporterAddr)),
  );
  return encodeStream(messages);
}
