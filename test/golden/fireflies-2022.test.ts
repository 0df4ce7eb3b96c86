/**
 * The parser over 10,000 real fireflies logged by a syslog-ng relay in 2022
 * (../shared/external-fireflies, used in place): every line parses, as logged (relay framing)
 * and as its host sent it (RFC 5424), and the counts equal those counted independently
 * (test/support/fireflies-2022.ts says how).
 */
import { describe, expect, it } from 'vitest';
import { parseFirefly } from '../../decoders/firefly/parse.js';
import { asSent, EXPECTED_2022, readFireflies2022 } from '../support/fireflies-2022.js';

const lines = readFireflies2022('fireflies-2022');
const enc = new TextEncoder();

describe.skipIf(lines === undefined)('10,000 real fireflies (2022)', () => {
  it.each(['relay', 'rfc5424'] as const)('every line parses, framed as %s', (framing) => {
    const byState = { start: 0, ongoing: 0, end: 0 };
    const byIpVersion = { 4: 0, 6: 0 };
    const byExperiment: Record<number, [number, number]> = {};
    const refused: Record<string, number> = {};
    const framings = new Set<string>();
    let endsBeforeStart = 0;
    for (const line of lines!) {
      const r = parseFirefly(enc.encode(framing === 'relay' ? line : asSent(line)));
      if (!r.ok) {
        refused[r.error.reason] = (refused[r.error.reason] ?? 0) + 1;
        continue;
      }
      const f = r.firefly;
      byState[f.state]++;
      byIpVersion[f.ipVersion]++;
      const e = (byExperiment[f.experimentId] ??= [0, 0]);
      if (f.state === 'start') e[0]++;
      if (f.state === 'end') e[1]++;
      framings.add(`${f.framing}|${f.appName}|${f.application}`);
      if (f.endMs !== undefined && f.endMs < f.startMs) endsBeforeStart++;
    }
    expect(refused).toEqual({ 'not-firefly': EXPECTED_2022.notFirefly });
    expect(byState).toEqual(EXPECTED_2022.byState);
    expect(byIpVersion).toEqual(EXPECTED_2022.byIpVersion);
    expect(byExperiment).toEqual(EXPECTED_2022.byExperiment);
    expect([...framings]).toEqual([`${framing}|flowd|flowd v0.1.2`]);
    expect(endsBeforeStart).toBe(0);
  });
});
