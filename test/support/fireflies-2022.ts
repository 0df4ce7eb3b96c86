/**
 * The 10,000 production fireflies of ../shared/external-fireflies (third-party data, README
 * beside it): read in place from the .tgz, never copied into the repository.
 *
 * The expected numbers below were counted from the file independently of the collector's
 * parser: `grep -c '"state": "start"'` (and "end", '"afi": "ipv6"', '"afi": "ipv4"') over the
 * extracted log, and the same with python3's json module from the first `{` of each line
 * (per-experiment counts; the one line without `{` is syslog-ng's statistics). They agree with
 * the README's 5,237 / 4,762 / 9,885 / 114.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { repoRoot } from './root.js';

export const FIREFLIES_2022 = join(repoRoot(), '..', 'shared', 'external-fireflies', 'firefly-collector_test_data_2022.log.tgz');

export const EXPECTED_2022 = {
  lines: 10_000,
  fireflies: 9_999,
  notFirefly: 1,
  byState: { start: 5_237, ongoing: 0, end: 4_762 },
  byIpVersion: { 4: 114, 6: 9_885 },
  /** experiment id -> [start, end] */
  byExperiment: { 16: [3_085, 2_601], 23: [2_152, 2_161] } as Record<number, [number, number]>,
};

/** The log's lines, or undefined (with a notice) when the shared data is absent. */
export function readFireflies2022(who: string): string[] | undefined {
  if (!existsSync(FIREFLIES_2022)) {
    console.warn(`${who}: ${FIREFLIES_2022} absent, real-firefly checks skipped`);
    return undefined;
  }
  const tar = gunzipSync(readFileSync(FIREFLIES_2022));
  // One regular file in a ustar archive: a 512-byte header (size: 12 octal digits at 124).
  const size = parseInt(tar.toString('latin1', 124, 136).replace(/\0.*$/, '').trim(), 8);
  const text = tar.toString('utf8', 512, 512 + size);
  return text.split('\n').filter((l) => l !== '');
}

/** A logged line as its host sent it: the relay's `Mon DD HH:MM:SS HOST ` dropped, `<134>` in front. */
export function asSent(line: string): string {
  const m = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ (1 .*)$/s.exec(line);
  return m ? `<134>${m[1]}` : line;
}
