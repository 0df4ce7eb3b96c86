/**
 * FlowRecord's address bytes (addrBytes, addrLen, srcAddrAt, dstAddrAt) against its formatted
 * addresses, over every capture the golden tests replay: the fixtures (test/fixtures), the
 * corpus exporter captures (../shared/corpus/exporters) and the third-party captures
 * (../shared/external-captures; skipped with a notice when ../shared is absent). Each record
 * is checked inside the sink call, the only time its bytes are valid:
 * - addrBytes is the datagram itself (no copy; for a set held until its template arrived,
 *   the held copy its records are decoded from), and the addrLen octets at srcAddrAt /
 *   dstAddrAt format to srcAddr / dstAddr;
 * - addrLen is 0 exactly when srcAddr or dstAddr is undefined, or they are of different
 *   families (the documented rule: both addresses, of one length, or none);
 * - the offsets do not depend on withAddresses (decoded again without formatting).
 * Ways: the daemon's (compiled fills), fillRecord only, and sFlow tunnels walked with
 * templates read the outer way.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { useCompiledFill } from '../../decoders/ipfix/data.js';
import { ipv4String, ipv6String } from '../../decoders/packet/addr.js';
import type { FlowRecord } from '../../decoders/record.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS, type DatagramDecoderOptions } from '../../src/pipeline/decoder.js';
import { FIXTURES } from '../support/expected.js';
import { repoRoot } from '../support/root.js';

const SHARED = join(repoRoot(), '..', 'shared');
const DIRS = [FIXTURES, join(SHARED, 'corpus', 'exporters'), join(SHARED, 'external-captures')];
const sharedPresent = existsSync(SHARED);
if (!sharedPresent) console.warn(`address-bytes: ${SHARED} absent, only test/fixtures checked`);

const captures = DIRS.filter((d) => existsSync(d)).flatMap((d) =>
  readdirSync(d)
    .filter((f) => /\.pcap(ng)?$/.test(f))
    .sort()
    .map((f) => join(d, f)),
);

interface Tally {
  records: number;
  withBytes: number;
  /** Records of sets held for their template: their bytes are the held copy. */
  held: number;
}

/** The record's addresses read from its bytes: [src, dst], or undefined when addrLen is 0. */
function fromBytes(rec: FlowRecord): [string, string] | undefined {
  if (rec.addrLen === 0) return undefined;
  const b = rec.addrBytes!;
  const fmt = rec.addrLen === 16 ? ipv6String : ipv4String;
  return [fmt(b, rec.srcAddrAt), fmt(b, rec.dstAddrAt)];
}

/**
 * Decodes every capture with `opts`, checks each record against the rules above, and returns
 * the tally by protocol, the problems found (the first few) and the offsets in order.
 */
function replay(opts: Partial<DatagramDecoderOptions>): {
  tally: Map<string, Tally>;
  byFile: Map<string, number>;
  problems: string[];
  offsets: number[];
} {
  const tally = new Map<string, Tally>();
  const byFile = new Map<string, number>();
  const problems: string[] = [];
  const offsets: number[] = [];
  for (const file of captures) {
    let datagrams;
    try {
      datagrams = readCaptureFile(file).datagrams;
    } catch {
      continue; // not a capture this reader takes (the pcap tests say which)
    }
    const decoder = new DatagramDecoder({ ...DEFAULT_DECODER_OPTIONS, ...opts });
    for (const d of datagrams) {
      const payload = d.payload;
      const check = (rec: FlowRecord): void => {
        offsets.push(rec.addrLen, rec.srcAddrAt, rec.dstAddrAt);
        if (opts.withAddresses !== true) return;
        const t = tally.get(rec.protocol) ?? { records: 0, withBytes: 0, held: 0 };
        tally.set(rec.protocol, t);
        t.records++;
        const base = file.slice(file.lastIndexOf('/') + 1);
        const where = `${base} frame ${d.frame} ${rec.protocol} template ${rec.templateId}`;
        const { srcAddr, dstAddr } = rec;
        const both = srcAddr !== undefined && dstAddr !== undefined && srcAddr.includes(':') === dstAddr.includes(':');
        if ((rec.addrLen !== 0) !== both) {
          if (problems.length < 10) problems.push(`${where}: addrLen ${rec.addrLen} with ${srcAddr} -> ${dstAddr}`);
          return;
        }
        if (rec.addrLen === 0) {
          if (rec.addrBytes !== undefined && problems.length < 10) problems.push(`${where}: addrBytes without addrLen`);
          return;
        }
        t.withBytes++;
        byFile.set(base, (byFile.get(base) ?? 0) + 1);
        // The datagram itself; for IPFIX / v9 a set held until its template came (pending.ts) is
        // decoded from the held copy of its body, which is then what the offsets refer to.
        if (rec.addrBytes !== payload) {
          if (rec.protocol === 'ipfix' || rec.protocol === 'netflow9') t.held++;
          else if (problems.length < 10) problems.push(`${where}: addrBytes is not the datagram`);
        }
        const inRange = (at: number): boolean => Number.isInteger(at) && at >= 0 && at + rec.addrLen <= rec.addrBytes!.length;
        if (!inRange(rec.srcAddrAt) || !inRange(rec.dstAddrAt)) {
          if (problems.length < 10) problems.push(`${where}: offsets ${rec.srcAddrAt} / ${rec.dstAddrAt} outside the datagram`);
          return;
        }
        const [src, dst] = fromBytes(rec)!;
        if ((src !== srcAddr || dst !== dstAddr) && problems.length < 10) {
          problems.push(`${where}: bytes say ${src} -> ${dst}, strings ${srcAddr} -> ${dstAddr}`);
        }
      };
      decoder.decodeInto(payload, d.srcAddr, d.srcPort, d.timeMs, 'any', { add: check });
    }
  }
  return { tally, byFile, problems, offsets };
}

afterEach(() => useCompiledFill(true));

const WAYS: [string, Partial<DatagramDecoderOptions>, boolean][] = [
  ['the daemon way (compiled fills)', {}, true],
  ['fillRecord only', {}, false],
  ['sFlow tunnels walked, IE 31 twice read the outer way', { innerHeaders: true, outerFlowLabelExporters: ['0.0.0.0/0', '::/0'] }, true],
];

describe('address bytes agree with the formatted addresses in every golden capture', () => {
  it('finds the captures', () => {
    expect(captures.length).toBeGreaterThanOrEqual(sharedPresent ? 100 : 10);
  });

  for (const [name, opts, compiled] of WAYS) {
    it(
      name,
      () => {
        useCompiledFill(compiled);
        const shown = replay({ ...opts, withAddresses: true });
        expect(shown.problems).toEqual([]);
        // Every flow protocol was seen, with address bytes (IE 315 frames: ipfix_softflowd_psamp).
        for (const p of ['ipfix', 'netflow9', 'netflow5', 'sflow']) {
          const t = shown.tally.get(p);
          expect({ p, records: (t?.records ?? 0) > 0, withBytes: (t?.withBytes ?? 0) > 0 }).toEqual({ p, records: true, withBytes: true });
        }
        const all = [...shown.tally.values()].reduce((n, t) => n + t.withBytes, 0);
        expect(all).toBeGreaterThan(sharedPresent ? 10_000 : 1_000);
        // IE 315 frames (softflowd PSAMP; akvorado's IE 315 export) and sFlow in VXLAN among them.
        const named = [
          'ipfix_softflowd_psamp.pcap',
          ...(sharedPresent ? ['akvorado_ipfix_datalink_ie315.pcap', 'akvorado_sflow_encap_vxlan.pcap'] : []),
        ];
        for (const f of named) expect({ f, found: (shown.byFile.get(f) ?? 0) > 0 }).toEqual({ f, found: true });
        // Held sets are the exception, not the rule.
        const held = [...shown.tally.values()].reduce((n, t) => n + t.held, 0);
        expect(held).toBeLessThan(all / 10);
        console.log(`address-bytes (${name}): ${JSON.stringify(Object.fromEntries(shown.tally))}`);
        // The same offsets without formatting: withAddresses decides the strings only.
        const bare = replay({ ...opts, withAddresses: false });
        expect(bare.offsets.length).toBe(shown.offsets.length);
        expect(bare.offsets).toEqual(shown.offsets);
      },
      120_000,
    );
  }
});
