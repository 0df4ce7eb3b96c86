/**
 * The one catalogue of decode errors. Every error a decoder reports carries one of these
 * stable codes, so collectors can count errors per exporter and reason and rate-limit the
 * log line per code. Decoders throw only DecodeError; anything else escaping a decoder is
 * a bug (the property tests assert exactly that).
 */
export const DecodeErrorCodes = [
  // generic
  'truncated', // a length or count points past the bytes we were given
  'bad-version', // the datagram's version field is not one this decoder handles
  'bad-length', // a length field is impossible (smaller than its own header, zero where not allowed)
  'limit-exceeded', // a hard cap (templates, fields, samples, records, buffered bytes) was hit
  // IPFIX / NetFlow v9 (RFC 7011, RFC 3954)
  'bad-set-id', // set id 4..255 is reserved (RFC 7011 section 3.3.2)
  'bad-template', // template record is malformed (id < 256, zero-length field where not allowed...)
  'template-missing', // data set for a template we do not know (buffered or dropped)
  'template-withdrawn', // data set for a template that was withdrawn
  'record-malformed', // a data record cannot be decoded with its template (varlen overrun...)
  // Records of a template that carries no volume (none of the counters of plan.ts chooseVolume,
  // no frame): counted per record, never added as zeros. Counted in the exporter's errors by
  // reason only (not as a bad datagram: the datagram itself is well formed).
  'no-volume',
  // sFlow v5
  'bad-address-type', // agent address type is neither IPv4 (1) nor IPv6 (2)
  // pcap files
  'pcap-bad-magic',
  'pcap-unsupported-linktype',
  'pcap-truncated',
  // packet walker
  'unknown-protocol',
  // SciTags fireflies (decoders/firefly/parse.ts FireflyErrorReasons, the same names)
  'too-large', // longer than FIREFLY_MAX_BYTES, refused before parsing
  'not-utf8', // not UTF-8 text
  'not-firefly', // no JSON object in the message (another syslog line, e.g. a relay's statistics)
  'not-json', // the text from the first `{` is not one JSON document
  'schema', // JSON, but not a firefly v1 (the message names the field)
  // goflow2 streams (collectors/goflow2-stream.ts)
  'bad-separator', // the byte after a message is not the separator goflow2's file transport writes
  // the pipeline around the decoders
  'no-decoder', // no entry of the protocol table accepts this listener and version field
  'decoder-crash', // a decoder threw something other than a DecodeError: a bug, isolated and counted
] as const;

export type DecodeErrorCode = (typeof DecodeErrorCodes)[number];

export class DecodeError extends Error {
  readonly code: DecodeErrorCode;
  /** Byte offset within the datagram (or file) where the problem was found, when known. */
  readonly offset: number | undefined;

  constructor(code: DecodeErrorCode, message: string, offset?: number) {
    // A hostile sender can make every datagram an error: skip the stack trace (10-20 us of
    // V8 stack capture each); code, message and offset say all a decode error needs to.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${code}: ${message}${offset === undefined ? '' : ` (at offset ${offset})`}`);
    Error.stackTraceLimit = limit;
    this.name = 'DecodeError';
    this.code = code;
    this.offset = offset;
  }
}

export function isDecodeError(err: unknown): err is DecodeError {
  return err instanceof DecodeError;
}
