import { readCaptureFile } from '../../collectors/pcap.js';
import type { FlowRecord } from '../../decoders/record.js';
import type { DatagramDecoder } from '../pipeline/decoder.js';

/**
 * Runs capture files through a decoder as if their datagrams were received live (capture
 * time as receive time), for `ingest` and `decode`. Every problem reaches `onDiagnostic`
 * as "FILE: frame N: reason", frames numbered as Wireshark numbers them. Returns how many
 * frames were not usable UDP datagrams.
 */
export function decodeCaptures(
  files: readonly string[],
  decoder: DatagramDecoder,
  /** `fields`: the same facts as the line, structured (for a JSON log line). */
  onDiagnostic: (line: string, fields: { file: string; frame: number; reason: string }) => void,
  /** Called per record; the record is only valid during the call (decoders may reuse it). */
  onRecord: (rec: FlowRecord, file: string, frame: number, receivedMs: number, exporterAddr: string) => void,
): { skippedFrames: number } {
  let skippedFrames = 0;
  for (const file of files) {
    const capture = readCaptureFile(file);
    for (const s of capture.skipped) {
      skippedFrames++;
      onDiagnostic(`${file}: frame ${s.frame}: skipped: ${s.reason}`, { file, frame: s.frame, reason: `skipped: ${s.reason}` });
    }
    for (const d of capture.datagrams) {
      const out = decoder.decodeInto(d.payload, d.srcAddr, d.srcPort, d.timeMs, 'any', {
        add: (rec) => onRecord(rec, file, d.frame, d.timeMs, d.srcAddr),
      });
      for (const e of out.errors) onDiagnostic(`${file}: frame ${d.frame}: ${e.message}`, { file, frame: d.frame, reason: e.message });
    }
  }
  return { skippedFrames };
}
