import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Goflow2Framer, type Goflow2Separator, separatorByte } from '../../collectors/goflow2-stream.js';
import { DecodeError } from '../../decoders/errors.js';
import { messageExporter } from '../../decoders/goflow2/decoder.js';
import { emptyScan } from '../../decoders/goflow2/wire.js';
import type { FlowRecord } from '../../decoders/record.js';
import type { DatagramDecoder } from '../pipeline/decoder.js';

/** Bytes read at a time: a file is framed as it is read, never held whole. */
const CHUNK = 1024 * 1024;

/**
 * Runs files of goflow2's binary output (`goflow2 -format=bin`: varint-length-prefixed
 * FlowMessages, each followed by `framing.separator`) through a decoder as the daemon's goflow2 input would, for `ingest --format
 * goflow2`. Each message's receive time is its time_received_ns (goflow2's clock, as a
 * capture's frame time is for pcaps), or the file's modification time when it has none; its
 * exporter is its sampler_address. Problems reach `onDiagnostic` as "FILE: message N: reason".
 * Returns the messages read and the framing errors (counted apart: they belong to no exporter).
 */
export function decodeGoflow2Files(
  files: readonly string[],
  decoder: DatagramDecoder,
  framing: { maxMessageBytes: number; separator: Goflow2Separator },
  onDiagnostic: (line: string, fields: { file: string; frame: number; reason: string }) => void,
  /** Per record (valid during the call only), with its file and message number (from 1). */
  onRecord: (rec: FlowRecord, receivedMs: number, exporterAddr: string, file: string, message: number) => void,
): { messages: number; framingErrors: Record<string, number> } {
  let messages = 0;
  const framingErrors: Record<string, number> = {};
  const scan = emptyScan();
  for (const file of files) {
    const fd = openSync(file, 'r');
    try {
      const fallbackMs = fstatSync(fd).mtimeMs;
      const framer = new Goflow2Framer(framing.maxMessageBytes, separatorByte(framing.separator));
      let n = 0;
      const problem = (e: DecodeError, frame: number): void => {
        framingErrors[e.code] = (framingErrors[e.code] ?? 0) + 1;
        onDiagnostic(`${file}: message ${frame}: ${e.message}`, { file, frame, reason: e.message });
      };
      for (;;) {
        const chunk = Buffer.allocUnsafe(CHUNK);
        const got = readSync(fd, chunk, 0, CHUNK, null);
        if (got === 0) break;
        framer.push(chunk.subarray(0, got));
        for (let m = framer.next(); m !== undefined; m = framer.next()) {
          if (m instanceof DecodeError) {
            problem(m, n + 1);
            break;
          }
          n++;
          const exporter = messageExporter(m, scan);
          const receivedMs = scan.timeReceivedNs > 0 ? scan.timeReceivedNs / 1e6 : fallbackMs;
          const out = decoder.decodeInto(m, exporter, 0, receivedMs, 'goflow2', {
            add: (rec) => onRecord(rec, receivedMs, exporter, file, n),
          });
          for (const e of out.errors) onDiagnostic(`${file}: message ${n}: ${e.message}`, { file, frame: n, reason: e.message });
        }
        if (framer.failed) break;
      }
      const cut = framer.end();
      if (cut) problem(cut, n + 1);
      messages += n;
    } finally {
      closeSync(fd);
    }
  }
  return { messages, framingErrors };
}
