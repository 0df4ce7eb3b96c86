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

const USAGE = `usage: scitags-collector decode FILE.pcap [FILE.pcap ...]
Prints one JSON line per decoded record (IPFIX / NetFlow data record or sFlow flow sample):
exporter, domain, template id, every field by IANA / sFlow name, sampling rate and source,
and the SciTags pair. A UDP datagram to the firefly port (${DEFAULT_PORTS.firefly}) is one line:
the parsed SciTags firefly, or "refused" with the reason. Problems go to stderr as
"FILE: frame N: reason".
`;

export function runDecode(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length === 0) {
    process.stderr.write(USAGE);
    return 2;
  }
  const registry = loadSnapshot(Date.now());
  const decoder = new DatagramDecoder({ ...DEFAULT_DECODER_OPTIONS, withFields: true, withAddresses: true });
  try {
    decodeCaptures(
      positionals,
      decoder,
      (line) => process.stderr.write(`${line}\n`),
      (rec, file, frame) => process.stdout.write(`${JSON.stringify(describeRecord(file, frame, rec, registry))}\n`),
      {
        port: DEFAULT_PORTS.firefly,
        decoder: new DatagramDecoder(DEFAULT_DECODER_OPTIONS),
        onFirefly: (firefly, o) => process.stdout.write(`${JSON.stringify(describeFirefly(o, { firefly }, registry))}\n`),
        onRefused: (refused, detail, o) => process.stdout.write(`${JSON.stringify(describeFirefly(o, { refused, detail }, registry))}\n`),
      },
    );
  } catch (err) {
    if (err instanceof DecodeError || (err as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`scitags-collector decode: ${(err as Error).message}\n`);
      return 1;
    }
    throw err;
  }
  return 0;
}
