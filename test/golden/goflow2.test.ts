/**
 * goflow2 input against fixed bytes and real captures:
 * - the golden stream (test/fixtures/goflow2_golden.bin) is what our encoder writes, and
 *   `protoc --decode_raw` (Debian protobuf-compiler: an independent protobuf parser) reads
 *   each of its messages as goflow2_golden.txt says, field numbers and values checked by hand
 *   against goflow2's pb/flow.proto; skipped with a notice when protoc is absent (CI installs it);
 * - every capture fixture (and the corpus export captures in ../shared when present), decoded
 *   and written as the FlowMessages goflow2 would have written for its records, gives
 *   `ingest --format goflow2` the same pairs and unmarked totals as `ingest` of the capture.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Goflow2Framer, separatorByte } from '../../collectors/goflow2-stream.js';
import { ingestFiles, type IngestDocument } from '../../src/commands/ingest.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { CLI } from '../support/daemon.js';
import { fixturePath, fixturesWithTruth } from '../support/expected.js';
import { captureToGoflow2, encodeStream } from '../support/goflow2.js';
import { GOLDEN_BIN, GOLDEN_MESSAGES } from '../support/goflow2-golden.js';
import { repoRoot } from '../support/root.js';

const registry = loadSnapshot(0);
const protoc = ['/usr/bin/protoc', 'protoc'].find((p) => spawnSync(p, ['--version']).status === 0);
if (!protoc) {
  if (process.env.CI) throw new Error('protoc (Debian protobuf-compiler) is required in CI');
  console.warn('goflow2 golden: protoc absent, the protoc --decode_raw check is skipped');
}

function messagesOf(stream: Buffer): Buffer[] {
  const f = new Goflow2Framer(65536, separatorByte('newline'));
  f.push(stream);
  const out: Buffer[] = [];
  for (let m = f.next(); m !== undefined; m = f.next()) {
    if (!(m instanceof Uint8Array)) throw m;
    out.push(Buffer.from(m));
  }
  expect(f.end()).toBeUndefined();
  return out;
}

describe('the golden goflow2 stream', () => {
  const bin = readFileSync(fixturePath('goflow2_golden.bin'));

  it('is what our encoder writes from the golden messages', () => {
    expect(GOLDEN_BIN).toBe(fixturePath('goflow2_golden.bin'));
    expect(encodeStream(GOLDEN_MESSAGES).equals(bin)).toBe(true);
  });

  it.skipIf(!protoc)('reads with protoc --decode_raw as goflow2_golden.txt says', () => {
    const text = messagesOf(bin)
      .map((m, i) => `# message ${i + 1}\n${execFileSync(protoc!, ['--decode_raw'], { input: m, encoding: 'utf8' })}`)
      .join('');
    expect(text).toBe(readFileSync(fixturePath('goflow2_golden.txt'), 'utf8'));
  });

  it('ingest --format goflow2 (the built CLI) prints its totals: ATLAS scaled 1:1000, IPv4 at the default rate', () => {
    const out = execFileSync(process.execPath, [CLI, 'ingest', '--format', 'goflow2', fixturePath('goflow2_golden.bin')], {
      encoding: 'utf8',
    });
    const doc = JSON.parse(out) as IngestDocument;
    expect(doc.pairs).toEqual([
      {
        community: 2,
        activity: 1,
        communityName: 'atlas',
        activityName: 'default',
        registered: true,
        records: 1,
        packets: 100_000,
        bytes: 150_000_000,
      },
    ]);
    expect(doc.unmarked).toEqual({ ipv6: { records: 0, packets: 0, bytes: 0 }, ipv4: { records: 1, packets: 1, bytes: 1500 } });
    expect(doc.stats).toMatchObject({ datagrams: 2, records: 2, decodeErrors: 0, unknownSampling: 1 });
  });

  it('decode --format goflow2 (the built CLI) prints one line per message, with its fields by goflow2 name', () => {
    const out = execFileSync(process.execPath, [CLI, 'decode', '--format', 'goflow2', fixturePath('goflow2_golden.bin')], {
      encoding: 'utf8',
    });
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      frame: 1,
      protocol: 'goflow2',
      exporter: '192.0.2.1:0',
      srcAddr: '2001:db8::1',
      class: 'pair',
      scitags: { community: 2, activity: 1, communityName: 'atlas' },
      bytesScaled: 150_000_000,
      fields: { type: 'IPFIX', sampler_address: '192.0.2.1', ipv6_flow_label: 0x10004 },
    });
    expect(lines[0]).not.toHaveProperty('addrBytes');
    expect(lines[1]).toMatchObject({ frame: 2, exporter: '[2001:db8:ff::1]:0', class: 'ipv4', samplingSource: 'unknown' });
  });

  it('the same messages without separators (goflow2 -transport.file.sep=) read with --goflow2-separator none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goflow2-'));
    const file = join(dir, 'bare.bin');
    writeFileSync(file, encodeStream(GOLDEN_MESSAGES, ''));
    const ingest = (f: string, goflow2Separator: 'newline' | 'none') =>
      ingestFiles([f], { registry, format: 'goflow2', goflow2Separator, onDiagnostic: () => {} });
    const bare = await ingest(file, 'none');
    const golden = await ingest(fixturePath('goflow2_golden.bin'), 'newline');
    expect(bare).toEqual(golden);
    expect(bare.stats.records).toBe(2);
    // Read with the wrong setting, the first message is read and then the framing is lost.
    expect((await ingest(file, 'newline')).stats).toMatchObject({ records: 1, errorsByCode: { 'bad-separator': 1 } });
  });

  it('a stream cut inside its last message counts one truncated, the first message still counted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goflow2-'));
    const file = join(dir, 'cut.bin');
    writeFileSync(file, bin.subarray(0, bin.length - 5));
    const lines: string[] = [];
    const doc = await ingestFiles([file], { registry, format: 'goflow2', onDiagnostic: (l) => lines.push(l) });
    expect(doc.stats).toMatchObject({ datagrams: 1, records: 1, decodeErrors: 1, errorsByCode: { truncated: 1 } });
    expect(lines).toEqual([
      `${file}: message 2: truncated: stream ended inside a FlowMessage (${bin.length - 5 - (1 + messagesOf(bin)[0]!.length + 1)} bytes held)`,
    ]);
  });
});

const SHARED = join(repoRoot(), '..', 'shared', 'corpus', 'exporters');
const shared = existsSync(SHARED) ? readdirSync(SHARED).filter((f) => f.endsWith('.pcap')) : [];
if (shared.length === 0) console.warn(`goflow2 corpus: ${SHARED} absent, only the fixtures' copies are converted`);
const captures = [
  ...fixturesWithTruth().map((f) => ({ name: f.name, pcap: f.pcap })),
  ...shared.map((f) => ({ name: `corpus ${f}`, pcap: join(SHARED, f) })),
];

describe('captures converted to goflow2 messages give ingest the same totals', () => {
  const dir = mkdtempSync(join(tmpdir(), 'goflow2-corpus-'));
  for (const c of captures) {
    it(c.name, async () => {
      const file = join(dir, `${c.name.replace(/\W/g, '_')}.bin`);
      writeFileSync(file, captureToGoflow2(c.pcap));
      const diagnostics: string[] = [];
      const pcapDoc = await ingestFiles([c.pcap], { registry, onDiagnostic: () => {} });
      const goflowDoc = await ingestFiles([file], { registry, format: 'goflow2', onDiagnostic: (l) => diagnostics.push(l) });
      expect(goflowDoc.pairs).toEqual(pcapDoc.pairs);
      expect(goflowDoc.unmarked).toEqual(pcapDoc.unmarked);
      expect(goflowDoc.stats.unknownIpVersion).toEqual(pcapDoc.stats.unknownIpVersion);
      expect(pcapDoc.stats.records).toBeGreaterThan(0);
      expect(goflowDoc.stats.records).toBe(pcapDoc.stats.records);
      expect(goflowDoc.stats.datagrams).toBe(pcapDoc.stats.records);
      expect(goflowDoc.stats.decodeErrors).toBe(0);
      expect(diagnostics).toEqual([]);
    });
  }
});
