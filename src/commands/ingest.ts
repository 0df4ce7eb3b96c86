import { parseArgs } from 'node:util';
import { CLI_LOG_OPTIONS, CLI_LOG_USAGE, cliLogger } from './cli-log.js';
import { DecodeError } from '../../decoders/errors.js';
import { loadSnapshot } from '../registry/loader.js';
import type { Registry } from '../registry/registry.js';
import { DatagramDecoder, type DatagramDecoderOptions, DEFAULT_DECODER_OPTIONS } from '../pipeline/decoder.js';
import { decodeCaptures } from '../ingest/captures.js';
import { TrafficSummary, type Counts, type PairTotals } from '../ingest/summary.js';
import { loadCache } from '../registry/loader.js';
import { createAggregator } from '../aggregate/index.js';
import { defaultConfig, flowLimitsOf } from '../config/schema.js';
import type { TrafficRow } from '../store/types.js';
import { DEFAULT_PORTS } from '../config/options.js';
import { FireflySummary, type FireflySection } from '../ingest/fireflies.js';
import { decodeGoflow2Files } from '../ingest/goflow2.js';
import { GOFLOW2_SEPARATORS, type Goflow2Separator } from '../../collectors/goflow2-stream.js';

/** The `ingest` JSON document (DESIGN.md, "Contract used by the acceptance checks"). */
export interface IngestDocument {
  pairs: PairTotals[];
  unmarked: { ipv6: Counts; ipv4: Counts };
  stats: {
    datagrams: number;
    records: number;
    decodeErrors: number;
    templateMisses: number;
    files: number;
    /** Frames of the captures that were not UDP datagrams we could use. */
    skippedFrames: number;
    /** Records that stated neither an IP version nor a label (not in pairs or unmarked). */
    unknownIpVersion: Counts;
    errorsByCode: Record<string, number>;
    lostRecords: number;
    lostDatagrams: number;
    lostSamples: number;
    unknownSampling: number;
    registry: { source: string; modified: string | null };
  };
  /**
   * UDP datagrams to the firefly port (10514): accepted, refused, flows through the flow table.
   * Only when the captures held any, so a flow-only document keeps the contract's shape.
   */
  fireflies?: FireflySection;
}

/** What the files are: pcap / pcapng captures (the default) or goflow2 binary output. */
export const INGEST_FORMATS = ['pcap', 'goflow2'] as const;
export type IngestFormat = (typeof INGEST_FORMATS)[number];

export interface IngestOptions {
  registry: Registry;
  /** 'pcap' when absent. */
  format?: IngestFormat;
  /** What follows each goflow2 message (inputs.goflow2Separator's default when absent). */
  goflow2Separator?: Goflow2Separator;
  /** Called for every problem, already naming file, frame and reason (also as fields). */
  onDiagnostic: (line: string, fields: { file: string; frame: number; reason: string }) => void;
}

/**
 * Runs the capture files through the daemon's path (decode stage, enrichment, the aggregator)
 * and sums the rows the aggregator would write, in memory. Every pair is kept (the document
 * lists unregistered pairs by number) and no bucket is ever too late: capture times may be
 * years old.
 */
/**
 * The decoder options of `ingest`: the decoders' limits as `serve` has them by default (from
 * the same option table), so a capture decodes as the daemon would decode it live.
 */
export function ingestDecoderOptions(): DatagramDecoderOptions {
  return { ...DEFAULT_DECODER_OPTIONS, flowLimits: flowLimitsOf(defaultConfig().decoder) };
}

export async function ingestFiles(files: readonly string[], opts: IngestOptions): Promise<IngestDocument> {
  const decoder = new DatagramDecoder(ingestDecoderOptions());
  const summary = new TrafficSummary();
  const rowsOut = {
    kind: 'ingest',
    writeRows: (rows: readonly TrafficRow[]): Promise<void> => {
      for (const r of rows) summary.addRow(r);
      return Promise.resolve();
    },
  };
  const aggregator = createAggregator(
    { keepUnregistered: 'all', maxLiveKeys: Number.MAX_SAFE_INTEGER, maxExporters: Number.MAX_SAFE_INTEGER },
    { now: () => 0, store: rowsOut, registry: () => opts.registry },
  );
  const fireflies = new FireflySummary();
  let skippedFrames = 0;
  let fireflyDatagrams = 0;
  // Errors of a goflow2 stream's framing (no exporter to count them under).
  let framingErrors: Record<string, number> = {};
  if (opts.format === 'goflow2') {
    framingErrors = decodeGoflow2Files(
      files,
      decoder,
      {
        maxMessageBytes: defaultConfig().inputs.goflow2MaxMessageBytes,
        separator: opts.goflow2Separator ?? defaultConfig().inputs.goflow2Separator,
      },
      opts.onDiagnostic,
      (rec, receivedMs, exporterAddr) => aggregator.add(rec, receivedMs, exporterAddr),
    ).framingErrors;
  } else {
    ({ skippedFrames, fireflyDatagrams } = decodeCaptures(
      files,
      decoder,
      opts.onDiagnostic,
      (rec, _file, _frame, receivedMs, exporterAddr) => aggregator.add(rec, receivedMs, exporterAddr),
      {
        port: DEFAULT_PORTS.firefly,
        decoder: new DatagramDecoder(ingestDecoderOptions()),
        onFirefly: (f, o) => fireflies.accept(f, o.receivedMs, o.exporterAddr),
        onRefused: (reason) => fireflies.refuse(reason),
      },
    ));
  }
  await aggregator.flush();
  const errorsByCode: Record<string, number> = { ...framingErrors };
  let lostRecords = 0;
  let lostDatagrams = 0;
  let lostSamples = 0;
  let unknownSampling = 0;
  for (const ex of decoder.exporters.all()) {
    for (const [code, n] of ex.errorsByCode) errorsByCode[code] = (errorsByCode[code] ?? 0) + n;
    lostRecords += ex.lostRecords;
    lostDatagrams += ex.lostDatagrams;
    lostSamples += ex.lostSamples;
    unknownSampling += ex.unknownSampling;
  }
  return {
    pairs: summary.pairTotals(opts.registry),
    unmarked: { ipv6: { ...summary.ipv6 }, ipv4: { ...summary.ipv4 } },
    stats: {
      datagrams: decoder.totals.datagrams,
      records: decoder.totals.records,
      decodeErrors: decoder.totals.decodeErrors + Object.values(framingErrors).reduce((a, n) => a + n, 0),
      templateMisses: decoder.totals.templateMisses,
      files: files.length,
      skippedFrames,
      unknownIpVersion: { ...summary.unknown },
      errorsByCode,
      lostRecords,
      lostDatagrams,
      lostSamples,
      unknownSampling,
      registry: { source: opts.registry.source, modified: opts.registry.modified ?? null },
    },
    ...(fireflyDatagrams > 0 ? { fireflies: fireflies.section(opts.registry, fireflyDatagrams) } : {}),
  };
}

const USAGE = `usage: scitags-collector ingest FILE.pcap [FILE.pcap ...] [--format pcap|goflow2] [--goflow2-separator newline|none]
       [--registry-cache FILE] [--quiet]
Decodes the UDP payloads of the captures (IPFIX, NetFlow v5/v9, sFlow v5; SciTags fireflies
to port ${DEFAULT_PORTS.firefly}) as if received live and prints per-experiment totals as one
JSON document. --format goflow2 reads files of goflow2's binary output (goflow2 -format=bin:
length-prefixed FlowMessages) instead, each message received at its time_received_ns from
its sampler_address; --goflow2-separator says what follows each message (goflow2's file
transport writes -transport.file.sep, a newline by default). Problems are logged to stderr
(warn, message "FILE: frame N: reason", fields file, frame, reason); --quiet drops them.
${CLI_LOG_USAGE}`;

export async function runIngest(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'registry-cache': { type: 'string' },
      format: { type: 'string', default: 'pcap' },
      'goflow2-separator': { type: 'string', default: 'newline' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
      ...CLI_LOG_OPTIONS,
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
  const log = cliLogger('ingest', values, process.env);
  const now = Date.now();
  const cached = values['registry-cache'] ? loadCache(values['registry-cache'], now) : undefined;
  if (cached?.error) log.warn(`ignoring registry cache: ${cached.error}`, { cacheFile: values['registry-cache'] });
  const registry = cached?.registry ?? loadSnapshot(now);
  const started = performance.now();
  try {
    const doc = await ingestFiles(positionals, {
      registry,
      format,
      goflow2Separator: separator,
      onDiagnostic: (line, fields) => {
        if (!values.quiet) log.warn(line, fields);
      },
    });
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    log.debug('ingest done', {
      files: positionals.length,
      datagrams: doc.stats.datagrams,
      records: doc.stats.records,
      ms: Math.round(performance.now() - started),
    });
    return 0;
  } catch (err) {
    if (err instanceof DecodeError || (err as NodeJS.ErrnoException).code === 'ENOENT') {
      log.error((err as Error).message);
      return 1;
    }
    throw err;
  }
}
