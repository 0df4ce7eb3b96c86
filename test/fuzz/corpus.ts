/** The regression corpus: small binary inputs under test/fuzz/corpus/ and index.json naming what each must do. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/root.js';
import { type Finding, fileNameOf } from './engine.js';

export const CORPUS_DIR = join(repoRoot(), 'test', 'fuzz', 'corpus');
const INDEX = join(CORPUS_DIR, 'index.json');

export interface CorpusEntry {
  /** The input, in this directory. */
  file: string;
  /** The fixture capture whose templates prime the decoder and whose exporter sends it. */
  capture: string;
  srcAddr: string;
  srcPort: number;
  /** The exporter counter the input must move (errorsByCode.CODE, templateMisses, records, ...). */
  counter: string;
  /** protocol | error codes | outcome counters that moved, exactly as first seen. */
  signature: string;
}

export function readCorpus(): CorpusEntry[] {
  return existsSync(INDEX) ? (JSON.parse(readFileSync(INDEX, 'utf8')) as CorpusEntry[]) : [];
}

/** Adds findings (their inputs as files) to the corpus; returns how many were new. */
export function addToCorpus(findings: readonly Finding[]): number {
  const entries = readCorpus();
  const known = new Set(entries.map((e) => e.signature));
  let added = 0;
  for (const f of findings) {
    if (known.has(f.signature)) continue;
    known.add(f.signature);
    const file = fileNameOf(f.input);
    writeFileSync(join(CORPUS_DIR, file), f.input);
    entries.push({
      file,
      capture: f.seed.capture,
      srcAddr: f.seed.srcAddr,
      srcPort: f.seed.srcPort,
      counter: f.counter,
      signature: f.signature,
    });
    added++;
  }
  entries.sort((a, b) => a.signature.localeCompare(b.signature));
  writeFileSync(INDEX, `${JSON.stringify(entries, null, 2)}\n`);
  return added;
}
