import { readCaptureFile } from '../../collectors/pcap.js';
import type { Firefly } from '../../decoders/firefly/types.js';
import type { FlowRecord } from '../../decoders/record.js';
import type { DatagramDecoder, RecordAggregator } from '../pipeline/decoder.js';

/** Where a capture's datagram came from and when (for `decode` lines and diagnostics). */
export interface CaptureOrigin {
  file: string;
  frame: number;
  /** Capture time, taken as the receive time. */
  receivedMs: number;
  exporterAddr: string;
  exporterPort: number;
}

/**
 * Fireflies in captures: datagrams to `port` (the daemon's firefly listener) are decoded as
 * the firefly listener decodes them, by a decoder of their own so that the flow protocols'
 * counters (`ingest`'s `stats`) mean what they meant before fireflies were read.
 */
export interface CaptureFireflies {
  port: number;
  decoder: DatagramDecoder;
  /** An accepted firefly (valid during the call only). */
  onFirefly(f: Firefly, origin: CaptureOrigin): void;
  /** A refused one: `reason` is the decoder's code (too-large, not-json, schema, ...). */
  onRefused(reason: string, detail: string, origin: CaptureOrigin): void;
}

/** Firefly datagrams hand no FlowRecords (the firefly entry emits to decoder.fireflies). */
const noRecords: RecordAggregator = { add: () => {} };

/**
 * Runs capture files through a decoder as if their datagrams were received live (capture
 * time as receive time), for `ingest` and `decode`. Every problem reaches `onDiagnostic`
 * as "FILE: frame N: reason", frames numbered as Wireshark numbers them. Returns how many
 * frames were not usable UDP datagrams and how many datagrams went to the firefly port.
 */
export function decodeCaptures(
  files: readonly string[],
  decoder: DatagramDecoder,
  /** `fields`: the same facts as the line, structured (for a JSON log line). */
  onDiagnostic: (line: string, fields: { file: string; frame: number; reason: string }) => void,
  /** Called per record; the record is only valid during the call (decoders may reuse it). */
  onRecord: (rec: FlowRecord, file: string, frame: number, receivedMs: number, exporterAddr: string) => void,
  fireflies?: CaptureFireflies,
): { skippedFrames: number; fireflyDatagrams: number } {
  let skippedFrames = 0;
  let fireflyDatagrams = 0;
  // One origin object updated per datagram: the firefly target is set once, not per datagram.
  const origin: CaptureOrigin = { file: '', frame: 0, receivedMs: 0, exporterAddr: '', exporterPort: 0 };
  if (fireflies) fireflies.decoder.fireflies = { accept: (f) => fireflies.onFirefly(f, origin) };
  for (const file of files) {
    const capture = readCaptureFile(file);
    for (const s of capture.skipped) {
      skippedFrames++;
      onDiagnostic(`${file}: frame ${s.frame}: skipped: ${s.reason}`, { file, frame: s.frame, reason: `skipped: ${s.reason}` });
    }
    for (const d of capture.datagrams) {
      if (fireflies && d.dstPort === fireflies.port) {
        fireflyDatagrams++;
        origin.file = file;
        origin.frame = d.frame;
        origin.receivedMs = d.timeMs;
        origin.exporterAddr = d.srcAddr;
        origin.exporterPort = d.srcPort;
        const out = fireflies.decoder.decodeInto(d.payload, d.srcAddr, d.srcPort, d.timeMs, 'firefly', noRecords);
        for (const e of out.errors) {
          fireflies.onRefused(e.code, e.message, origin);
          onDiagnostic(`${file}: frame ${d.frame}: ${e.message}`, { file, frame: d.frame, reason: e.message });
        }
        continue;
      }
      const out = decoder.decodeInto(d.payload, d.srcAddr, d.srcPort, d.timeMs, 'any', {
        add: (rec) => onRecord(rec, file, d.frame, d.timeMs, d.srcAddr),
      });
      for (const e of out.errors) onDiagnostic(`${file}: frame ${d.frame}: ${e.message}`, { file, frame: d.frame, reason: e.message });
    }
  }
  return { skippedFrames, fireflyDatagrams };
}
