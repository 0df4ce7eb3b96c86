/** Helpers shared by the benches: medians, the result rows of `npm run bench`, its table. */
import { readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';

export { repoRoot } from '../support/root.js';

/**
 * The registered pairs the aggregate and InfluxDB benches spread their keys over (15, as a
 * busy link carries), so both measure the same key mix.
 */
export const BENCH_PAIRS: readonly [number, number][] = [
  [2, 1],
  [2, 2],
  [2, 15],
  [2, 16],
  [2, 17],
  [2, 20],
  [3, 1],
  [3, 2],
  [3, 12],
  [3, 13],
  [3, 14],
  [4, 1],
  [5, 10],
  [6, 13],
  [8, 4],
];

/** Median of the runs (the upper one of the middle two for an even count); `xs` is not changed. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * One line of the `npm run bench` table: a figure measured `samples.length` times (one
 * sample per run; the table shows their median and min–max).
 */
export interface BenchRow {
  /** What was measured, e.g. 'decode: ipfix', 'e2e: sflow'. */
  bench: string;
  /** The set-up, e.g. 'workers=1, offered 250k records/s'; '' when there is only one. */
  config: string;
  metric: string;
  unit: string;
  samples: number[];
}

/** What one bench hands the runner: its rows and free-text notes printed under the table. */
export interface BenchOutput {
  rows: BenchRow[];
  notes: string[];
}

/** A unit guessed from a camelCase field name: recordsPerSec -> records/s, nsPerRecord -> ns. */
export function unitOf(field: string): string {
  const last = field.split('.').pop() ?? field;
  let m = /^([a-z]+)Per(?:Cpu|CPU)Sec/.exec(last);
  if (m) return `${m[1]}/CPU-s`;
  m = /^([a-z]+)PerSec/.exec(last);
  if (m) return `${m[1]}/s`;
  m = /(Ms|Ns)Per([A-Z][a-z]+)$/.exec(last);
  if (m) return `${m[1]!.toLowerCase()}/${m[2]!.toLowerCase()}`;
  if (/^ns[A-Z]/.test(last) || /Ns$/.test(last)) return 'ns';
  if (/Ms$/.test(last) || /^ms[A-Z]/.test(last)) return 'ms';
  if (/MB$/.test(last)) return 'MB';
  if (/Pct$|Percent$/.test(last)) return '%';
  m = /^([a-z]+)Per([A-Z][a-z]+)$/.exec(last);
  if (m) return `${m[1]}/${m[2]!.toLowerCase()}`;
  return '';
}

/**
 * The numeric fields of a result object (nested objects flattened as a.b), each with its
 * value; strings are collected apart (file names, sources). Arrays are left out: they hold
 * per-run detail of a figure that is already there as a scalar.
 */
export function numericFields(obj: unknown, prefix = ''): { numbers: Map<string, number>; strings: Map<string, string> } {
  const numbers = new Map<string, number>();
  const strings = new Map<string, string>();
  const walk = (o: unknown, pre: string): void => {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return;
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      const key = pre ? `${pre}.${k}` : k;
      if (typeof v === 'number' && Number.isFinite(v)) numbers.set(key, v);
      else if (typeof v === 'string') strings.set(key, v);
      else if (typeof v === 'object' && v !== null && !Array.isArray(v)) walk(v, key);
    }
  };
  walk(obj, prefix);
  return { numbers, strings };
}

/**
 * Rows from repeated runs of a bench returning a plain object: one row per numeric field
 * (whatever fields the bench has), its value in each run as the samples.
 */
export function rowsFromResults(bench: string, config: string, results: readonly unknown[]): BenchOutput {
  const samples = new Map<string, number[]>();
  const strings = new Map<string, Set<string>>();
  for (const r of results) {
    const f = numericFields(r);
    for (const [k, v] of f.numbers) (samples.get(k) ?? samples.set(k, []).get(k)!).push(v);
    for (const [k, v] of f.strings) (strings.get(k) ?? strings.set(k, new Set()).get(k)!).add(v);
  }
  return {
    rows: [...samples].map(([metric, xs]) => ({ bench, config, metric, unit: unitOf(metric), samples: xs })),
    notes: [...strings].map(
      ([k, vs]) => `${bench}: ${k}: ${[...vs].map((v) => v.replace(/^.*\/test\/fixtures\//, 'test/fixtures/')).join('; ')}`,
    ),
  };
}

/** A figure for the table: thousands separators from 1,000, about three significant digits below. */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000 || Number.isInteger(x)) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  if (a >= 0.01) return x.toFixed(3);
  return x.toPrecision(2);
}

/** The markdown table: bench | config | metric | median | spread (min–max) | runs. */
export function formatTable(rows: readonly BenchRow[]): string[] {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const lines = ['| bench | config | metric | median | spread (min–max) | runs |', '| --- | --- | --- | ---: | ---: | ---: |'];
  for (const r of rows) {
    const xs = r.samples.filter((x) => Number.isFinite(x));
    const unit = r.unit ? ` ${r.unit}` : '';
    const med = xs.length > 0 ? `${formatNumber(median(xs))}${unit}` : 'n/a';
    const spread = xs.length > 1 ? `${formatNumber(Math.min(...xs))}–${formatNumber(Math.max(...xs))}` : '–';
    lines.push(`| ${esc(r.bench)} | ${esc(r.config)} | ${esc(r.metric)} | ${med} | ${spread} | ${r.samples.length} |`);
  }
  return lines;
}

/** The CPU model name (/proc/cpuinfo; os.cpus() elsewhere). */
export function cpuModel(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? cpus()[0]?.model ?? '?';
  } catch {
    return cpus()[0]?.model ?? '?';
  }
}

/** Machine, kernel, Node and date, for the header of a bench report. */
export function machineLines(): string[] {
  return [
    `machine: ${cpuModel()}, ${cpus().length} cores; kernel ${release()}; Node ${process.version}`,
    `date: ${new Date().toISOString()}`,
  ];
}

/** A store that takes every write and keeps nothing (benches of the aggregator without I/O). */
export const nullStore = { kind: 'null', writeRows: (): Promise<void> => Promise.resolve() };
