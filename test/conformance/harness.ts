/**
 * The conformance suite's machinery (issue 12): runs every third-party capture of
 * ../shared/external-captures through the decoder exactly as `decode` / `ingest` do
 * (decodeCaptures with ingest's decoder options), sums what came out, and compares with the
 * independently derived values of test/conformance/expected/<name>.json. Shared by the test
 * and by `npm run gen:exporters` (the README's "Tested exporters" table).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ingestDecoderOptions } from '../../src/commands/ingest.js';
import { decodeCaptures } from '../../src/ingest/captures.js';
import { DatagramDecoder } from '../../src/pipeline/decoder.js';
import { repoRoot } from '../support/root.js';

/** Third-party data: used from ../shared, never copied into the repository. */
export const CAPTURES_DIR = join(repoRoot(), '..', 'shared', 'external-captures');
export const CONFORMANCE_DIR = join(repoRoot(), 'test', 'conformance');
export const KNOWN_FAILURES_FILE = join(CONFORMANCE_DIR, 'known-failures.json');

export interface CatalogEntry {
  name: string;
  repo: string;
  commit: string;
  paths: string[];
  kind: string;
  protocol: 'netflow5' | 'netflow9' | 'ipfix' | 'sflow';
  vendor: string;
  licence: string;
  notes: string;
}

/** What the suite compares, per capture. */
export interface Summary {
  /** Flow records carrying volume (a biflow's reverse direction is a record of its own). */
  records: number;
  /** Data records with no usable octet or packet count (counted, not added as zeros). */
  noVolume: number;
  octets: number;
  packets: number;
  /** Octets and packets times the sampling rate in force for each record. */
  octetsScaled: number;
  packetsScaled: number;
  /** Distinct flow labels seen (sorted). */
  flowLabels: number[];
  /** Distinct sampling rates applied to records (sorted; 1 where none is known). */
  samplingRates: number[];
}

export const COMPARED_FIELDS = [
  'records',
  'noVolume',
  'octets',
  'packets',
  'octetsScaled',
  'packetsScaled',
  'flowLabels',
  'samplingRates',
] as const satisfies readonly (keyof Summary)[];
export type ComparedField = (typeof COMPARED_FIELDS)[number];

export interface Expected extends Summary {
  name: string;
  protocol: string;
  source: Record<string, string>;
}

export interface Actual extends Summary {
  /** Decode errors by code (reported, not compared: codes are the decoders' business). */
  errors: Record<string, number>;
}

export interface Difference {
  capture: string;
  field: ComparedField;
  expected: number | number[];
  actual: number | number[];
}

export interface KnownFailure extends Difference {
  why: string;
}

export function capturesPresent(): boolean {
  return existsSync(join(CAPTURES_DIR, 'catalog.json'));
}

export function loadCatalog(): CatalogEntry[] {
  return JSON.parse(readFileSync(join(CAPTURES_DIR, 'catalog.json'), 'utf8')) as CatalogEntry[];
}

export function loadExpected(name: string): Expected {
  return JSON.parse(readFileSync(join(CONFORMANCE_DIR, 'expected', `${name}.json`), 'utf8')) as Expected;
}

export function loadKnownFailures(): KnownFailure[] {
  return JSON.parse(readFileSync(KNOWN_FAILURES_FILE, 'utf8')) as KnownFailure[];
}

/** Decodes one capture the way `ingest` does and sums the records. */
export function decodeCapture(path: string): Actual {
  const decoder = new DatagramDecoder(ingestDecoderOptions());
  const labels = new Set<number>();
  const rates = new Set<number>();
  const errors: Record<string, number> = {};
  const s = { records: 0, noVolume: 0, octets: 0, packets: 0, octetsScaled: 0, packetsScaled: 0 };
  decodeCaptures(
    [path],
    decoder,
    (_line, f) => {
      // The reason starts with the error's code ("bad-length: ..."), or "skipped: ...".
      const code = /^([a-z-]+)/.exec(f.reason)?.[1] ?? 'other';
      errors[code] = (errors[code] ?? 0) + 1;
      if (code === 'no-volume') s.noVolume++;
    },
    (rec) => {
      if (rec.bytes === 0 && rec.packets === 0) {
        // A record without volume, whether a decoder emits it or counts it as an error.
        s.noVolume++;
        return;
      }
      s.records++;
      s.octets += rec.bytes;
      s.packets += rec.packets;
      s.octetsScaled += rec.bytes * rec.samplingRate;
      s.packetsScaled += rec.packets * rec.samplingRate;
      rates.add(rec.samplingRate);
      if (rec.flowLabel !== undefined) labels.add(rec.flowLabel);
    },
  );
  // Records of templates without volume are counted by the decode stage per exporter, not
  // reported per frame (the datagram is not an error).
  for (const ex of decoder.exporters.all()) s.noVolume += ex.errorsByCode.get('no-volume') ?? 0;
  const sorted = (x: Set<number>) => [...x].sort((a, b) => a - b);
  return { ...s, flowLabels: sorted(labels), samplingRates: sorted(rates), errors };
}

export function differences(capture: string, expected: Summary, actual: Summary): Difference[] {
  const out: Difference[] = [];
  for (const field of COMPARED_FIELDS) {
    const e = expected[field];
    const a = actual[field];
    if (JSON.stringify(e) !== JSON.stringify(a)) out.push({ capture, field, expected: e, actual: a });
  }
  return out;
}

export interface CaptureResult {
  entry: CatalogEntry;
  expected: Expected;
  actual: Actual;
  differences: Difference[];
}

/** Every capture of the catalog, decoded and compared. */
export function runConformance(): CaptureResult[] {
  return loadCatalog().map((entry) => {
    const expected = loadExpected(entry.name);
    const actual = decodeCapture(join(CAPTURES_DIR, `${entry.name}.pcap`));
    return { entry, expected, actual, differences: differences(entry.name, expected, actual) };
  });
}
