import { parseArgs } from 'node:util';
import { DecodeError } from '../../decoders/errors.js';
import type { FlowRecord } from '../../decoders/record.js';
import { activityOf, communityOf } from '../../decoders/scitags/flowlabel.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../pipeline/decoder.js';
import { loadSnapshot } from '../registry/loader.js';
import type { Registry } from '../registry/registry.js';
import { type CaptureOrigin, decodeCaptures } from '../ingest/captures.js';
import type { Firefly } from '../../decoders/firefly/types.js';
import { DEFAULT_PORTS } from '../config/options.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../decoders/packet/constants.js';
import { classify } from '../enrich/series.js';
import { namedPair } from '../ingest/summary.js';
import { decodeGoflow2Files } from '../ingest/goflow2.js';
import { GOFLOW2_SEPARATORS, type Goflow2Separator } from '../../collectors/goflow2-stream.js';
import { INGEST_FORMATS, type IngestFormat } from './ingest.js';
import { defaultConfig } from '../config/schema.js';

/** One `decode` output line: where the record came from, what it says, and its SciTags pair. */
export function describeRecord(file: string, frame: number, rec: FlowRecord, registry: Registry): Record<string, unknown> {
  const cls = classify(rec);
  const label = rec.flowLabel;
  const pair = cls === 'pair' && label !== undefined ? namedPair(registry, communityOf(label), activityOf(label)) : null;
  // The address bytes are the datagram's (valid during the sink call only), not output: the
  // formatted srcAddr / dstAddr say the same.
  const { fields, addrBytes: _bytes, addrLen: _len, srcAddrAt: _src, dstAddrAt: _dst, ...core } = rec;
  return {
    file,
    frame,
    ...core,
    class: cls,
    scitags: pair,
    packetsScaled: rec.packets * rec.samplingRate,
    bytesScaled: rec.bytes * rec.samplingRate,
    ...(fields ? { fields } : {}),
  };
}

/** "address:port" as FlowRecord.exporter writes it (IPv6 in brackets). */
function endpoint(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/**
 * One `decode` line for a datagram to the firefly port: where it came from, then the parsed
 * firefly and its SciTags pair with registry names, or why it was refused.
 */
export function describeFirefly(
  origin: CaptureOrigin,
  result: { firefly: Firefly } | { refused: string; detail: string },
  registry: Registry,
): Record<string, unknown> {
  const head = {
    file: origin.file,
    frame: origin.frame,
    protocol: 'firefly',
    exporter: endpoint(origin.exporterAddr, origin.exporterPort),
    receivedMs: origin.receivedMs,
  };
  if (!('firefly' in result)) return { ...head, refused: result.refused, detail: result.detail };
  // The firefly's transport protocol as the flow lines have it (IANA number, `ipProtocol`):
  // `protocol` is the line's input protocol there and here.
  const { protocol, ...f } = result.firefly;
  return {
    ...head,
    ...f,
    ipProtocol: protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP,
    scitags: namedPair(registry, f.experimentId, f.activityId),
  };
}

const USAGE = `usage: scitags-collector decode FILE.pcap [FILE.pcap ...] [--format pcap|goflow2] [--goflow2-separator newline|none]
Prints one JSON line per decoded record (IPFIX / NetFlow data record or sFlow flow sample):
exporter, domain, template id, every field by IANA / sFlow name, sampling rate and source,
and the SciTags pair. A UDP datagram to the firefly port (${DEFAULT_PORTS.firefly}) is one line:
the parsed SciTags firefly, or "refused" with the reason. Problems go to stderr as
"FILE: frame N: reason". --format goflow2 reads files of goflow2's binary output (one line
per FlowMessage, its fields by goflow2's names; "frame" is the message number).
`;

export function runDecode(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      format: { type: 'string', default: 'pcap' },
      'goflow2-separator': { type: 'string', default: 'newline' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const format = values.format as IngestFormat;
  const separator = values['goflow2-separator'] as Goflow2Separator;
  if (positionals.length === 0 || !INGEST_FORMATS.includes(format) || !GOFLOW2_SEPARATORS.includes(separator)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const registry = loadSnapshot(Date.now());
  const decoder = new DatagramDecoder({ ...DEFAULT_DECODER_OPTIONS, withFields: true, withAddresses: true });
  const print = (rec: FlowRecord, file: string, frame: number): void => {
    process.stdout.write(`${JSON.stringify(describeRecord(file, frame, rec, registry))}\n`);
  };
  try {
    if (format === 'goflow2') {
      const framing = { maxMessageBytes: defaultConfig().inputs.goflow2MaxMessageBytes, separator };
      decodeGoflow2Files(
        positionals,
        decoder,
        framing,
        (line) => process.stderr.write(`${line}\n`),
        (rec, _ms, _ex, file, n) => print(rec, file, n),
      );
      return 0;
    }
    decodeCaptures(positionals, decoder, (line) => process.stderr.write(`${line}\n`), print, {
      port: DEFAULT_PORTS.firefly,
      decoder: new DatagramDecoder(DEFAULT_DECODER_OPTIONS),
      onFirefly: (firefly, o) => process.stdout.write(`${JSON.stringify(describeFirefly(o, { firefly }, registry))}\n`),
      onRefused: (refused, detail, o) => process.stdout.write(`${JSON.stringify(describeFirefly(o, { refused, detail }, registry))}\n`),
    });
  } catch (err) {
    if (err instanceof DecodeError || (err as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`scitags-collector decode: ${(err as Error).message}\n`);
      return 1;
    }
    throw err;
  }
  return 0;
}
