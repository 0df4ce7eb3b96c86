import { mkdtempSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFlowDecoderState, decodeFlowDatagram, snapshotFlowState } from '../../decoders/ipfix/index.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { DecoderStateFile, loadDecoderState, readStateDocument } from '../../src/serve/decoder-state-file.js';
import { f, ipfixDataSet, ipfixMessage, ipfixTemplateSet } from '../builders/ipfix.js';

const V4 = [f('sourceIPv4Address', 4), f('destinationIPv4Address', 4), f('octetDeltaCount', 4), f('packetDeltaCount', 4)];
const rec = { sourceIPv4Address: '10.0.0.1', destinationIPv4Address: '10.0.0.2', octetDeltaCount: 1000, packetDeltaCount: 1 };
const BOTH = ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }]), ipfixDataSet(256, V4, [rec])]);

function stateWith(sessions: number) {
  const st = createFlowDecoderState();
  for (let p = 0; p < sessions; p++) decodeFlowDatagram(BOTH, { exporterAddr: '192.0.2.1', exporterPort: p, receivedMs: p }, st);
  return st;
}

describe('the decoder state file', () => {
  it('is written as JSON lines, one per session, and read back equal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-state-'));
    const path = join(dir, 'sub', 'state.json');
    const doc = snapshotFlowState(stateWith(200), 5);
    const file = new DecoderStateFile(path, 1 << 30, () => 42);
    expect(await file.save(() => Promise.resolve(doc))).toBeUndefined();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(1 + 200 + 1);
    expect(JSON.parse(lines[0]!)).toEqual({ format: 'scitags-decoder-state', version: 2, savedMs: 5 });
    expect(JSON.parse(lines.at(-1)!)).toEqual({ end: { sessions: 200, exporterSampling: 0, truncated: 0 } });
    expect(readStateDocument(readFileSync(path))).toEqual(doc);
    expect(file.status()).toEqual({ ok: true, lastError: undefined, lastSavedMs: 42 });
    const loaded = loadDecoderState(path, {}, true);
    expect(loaded.warning).toBeUndefined();
    expect(loaded.state!.sessions.size).toBe(200);
  });

  it('still reads the single-document format of earlier versions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-state-'));
    const path = join(dir, 'old.json');
    const doc = snapshotFlowState(stateWith(3), 5);
    writeFileSync(path, JSON.stringify(doc));
    const loaded = loadDecoderState(path, {}, true);
    expect(loaded.document).toEqual(doc);
    expect([...loaded.state!.sessions.keys()].sort()).toEqual(['192.0.2.1:0', '192.0.2.1:1', '192.0.2.1:2']);
  });

  it('is capped by its byte limit (most recent sessions kept) and refuses a cut file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-state-'));
    const path = join(dir, 'state.json');
    const doc = snapshotFlowState(stateWith(100), 5);
    const line = `${JSON.stringify({ session: doc.sessions[0] })}\n`.length;
    const file = new DecoderStateFile(path, 200 + 10 * line, () => 1);
    await file.save(() => Promise.resolve(doc));
    const back = readStateDocument(readFileSync(path));
    expect(back.sessions.map((s) => s.port)).toEqual([99, 98, 97, 96, 95, 94, 93, 92, 91, 90]);
    expect(file.truncated).toBe(90);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.slice(0, text.lastIndexOf('{"end"')));
    expect(loadDecoderState(path, {}, true).warning).toMatch(/no end line/);
  });

  it('records a failed save as its status and a failure count, and recovers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-state-'));
    // A regular file where the directory should be: fails for root too.
    const notDir = join(dir, 'not-a-dir');
    writeFileSync(notDir, 'x');
    const doc = snapshotFlowState(stateWith(2), 5);
    const bad = new DecoderStateFile(join(notDir, 'state.json'), 1 << 20, () => 7);
    const err = await bad.save(() => Promise.resolve(doc));
    expect(err?.message).toMatch(/EEXIST|ENOTDIR/);
    expect(await bad.save(() => Promise.reject(new Error('worker gone')))).toEqual(new Error('worker gone'));
    expect(bad.failures).toBe(2);
    expect(bad.status()).toEqual({ ok: false, lastError: 'worker gone', lastSavedMs: undefined });
    unlinkSync(notDir);
    expect(await bad.save(() => Promise.resolve(doc))).toBeUndefined();
    expect(bad.status()).toEqual({ ok: true, lastError: undefined, lastSavedMs: 7 });
    expect(bad.failures).toBe(2);
  });
});

describe('per-exporter rate limits', () => {
  const decoder = (datagramsPerSecond: number, newSessionsPerSecond: number) =>
    new DatagramDecoder({ ...DEFAULT_DECODER_OPTIONS, rateLimits: { datagramsPerSecond, newSessionsPerSecond } });

  it('drops datagrams beyond the rate per exporter, refilled by receive time', () => {
    const d = decoder(100, 0);
    let records = 0;
    for (let i = 0; i < 300; i++) records += d.decode(BOTH, '192.0.2.1', 1, 1000).records.length;
    for (let i = 0; i < 300; i++) records += d.decode(BOTH, '192.0.2.1', 1, 1500).records.length;
    // Another exporter has its own bucket.
    for (let i = 0; i < 10; i++) records += d.decode(BOTH, '192.0.2.2', 1, 1500).records.length;
    expect(records).toBe(100 + 50 + 10);
    const e = d.exporters.all().find((x) => x.address === '192.0.2.1')!;
    expect([e.datagrams, e.rateLimitedDatagrams, e.rateLimitedSessions]).toEqual([600, 450, 0]);
    expect(d.totals.rateLimitedDatagrams).toBe(450);
  });

  it('drops datagrams that open sessions beyond the new-session rate; known sessions go on', () => {
    const d = decoder(0, 100);
    let records = 0;
    for (let p = 0; p < 300; p++) records += d.decode(BOTH, '192.0.2.1', 10_000 + p, 1000).records.length;
    expect(records).toBe(100);
    // The 100 admitted sessions keep working; the refused ones stay refused until tokens refill.
    for (let p = 0; p < 300; p++) records += d.decode(BOTH, '192.0.2.1', 10_000 + p, 1000).records.length;
    expect(records).toBe(200);
    expect(d.totals.rateLimitedSessions).toBe(400);
    expect(d.flowState.sessions.size).toBe(100);
  });
});
