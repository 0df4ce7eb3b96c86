/**
 * The one interface every input protocol implements (IPFIX / NetFlow v9 / v5, sFlow v5, and
 * the inputs to come: SciTags fireflies, goflow2 protobuf).
 *
 * A decoder is pure: bytes + where they came from + its own state in; records (through a
 * sink), typed errors and per-datagram counters out. It never throws for bad input: every
 * problem is a DecodeError in `errors`. Anything else escaping `decode` is a bug in our
 * code, and the caller's crash isolation (src/pipeline/isolate.ts) turns it into a counted
 * `decoder-crash` instead of taking the daemon down.
 */
import type { DecodeError } from './errors.js';
import type { FlowProtocol, FlowRecord } from './record.js';

/** Where and when a datagram was received (the caller's clock: capture time in replays). */
export interface ExporterContext {
  /** Exporter address without port, IPv4-mapped IPv6 already folded to IPv4. */
  exporterAddr: string;
  exporterPort: number;
  receivedMs: number;
}

/**
 * Called once per record. The record may be reused by the decoder for the next one: it is
 * valid only during the call, and a consumer that keeps it must copy it.
 */
export type RecordSink = (rec: FlowRecord) => void;

/** What one datagram did, in one shape for every protocol (the caller sums per exporter). */
export interface DatagramOutcome {
  /** The wire protocol the datagram turned out to be; undefined when even that was unreadable. */
  protocol: FlowProtocol | undefined;
  /** Records handed to the sink. */
  records: number;
  /** Problems, in order; empty for a clean datagram. */
  errors: DecodeError[];
  /** Data sets waiting for (or dropped for want of) their template. */
  templateMisses: number;
  /** Sequence-number discontinuities, and the units they say were lost. */
  sequenceGaps: number;
  lostRecords: number;
  lostDatagrams: number;
  lostSamples: number;
  /** Records whose sampling rate nobody stated (the configured default was used). */
  unknownSampling: number;
  /** Records not emitted because their template carries no volume (the `no-volume` count). */
  noVolume: number;
  /**
   * Zero octets after the last set that were skipped as exporter padding (Cisco ACI, PAN-OS
   * 8.1): counted per exporter, not an error.
   */
  paddingOctets: number;
}

export function emptyOutcome(): DatagramOutcome {
  return {
    protocol: undefined,
    records: 0,
    errors: [],
    templateMisses: 0,
    sequenceGaps: 0,
    lostRecords: 0,
    lostDatagrams: 0,
    lostSamples: 0,
    unknownSampling: 0,
    noVolume: 0,
    paddingOctets: 0,
  };
}

/**
 * A change to a decoder's template state, for the caller's debug log: 'learnt' (an id not
 * held before), 'changed' (an id redefined with another layout), 'withdrawn' (RFC 7011 8.1)
 * or 'expired' (not refreshed within the configured lifetime, RFC 7011 8.4). The periodic
 * refresh of an unchanged template is not an event.
 */
export interface TemplateEvent {
  event: 'learnt' | 'changed' | 'withdrawn' | 'expired';
  protocol: 'ipfix' | 'netflow9';
  exporterAddr: string;
  exporterPort: number;
  domain: number;
  templateId: number;
  kind: 'data' | 'options';
  /** Field specifiers of the template (0 for a withdrawal of an id). */
  fields: number;
}

/** Options every decoder understands; each ignores what does not apply to it. */
export interface DecodeOptions {
  /** Fill FlowRecord.fields with every field by name (the `decode` CLI; costs an object per record). */
  withFields: boolean;
  /** Format srcAddr / dstAddr into records (the `decode` CLI; aggregation does not need them). */
  withAddresses: boolean;
  /** Rate used when the exporter states none (1 unless configured). */
  defaultSamplingRate: number;
  /** Walk one level of tunnel in raw headers (sFlow) and expose the inner label. */
  innerHeaders: boolean;
  /**
   * This datagram's exporter is configured to have its outer header's flow label counted
   * (`exporters.outerFlowLabel`): templates with IE 31 twice are read the outer way.
   */
  outerFlowLabel?: boolean;
  /**
   * Called on template changes (decoders with templates only). Observation only: it must
   * not throw nor decode. Undefined costs nothing (the daemon sets it at debug level).
   */
  onTemplate?: ((e: TemplateEvent) => void) | undefined;
}

/**
 * `Out` is what the decoder hands its sink: FlowRecords for the flow protocols, parsed
 * fireflies for the firefly decoder (decoders/firefly/decoder.ts).
 */
export interface Decoder<State, Out = FlowRecord> {
  /** Stable name, used in metrics, logs and crash fixture file names. */
  readonly name: string;
  createState(): State;
  /** Never throws DecodeError (they are returned); anything else thrown is a bug. */
  decode(payload: Uint8Array, ctx: ExporterContext, state: State, opts: DecodeOptions, sink: (out: Out) => void): DatagramOutcome;
}
