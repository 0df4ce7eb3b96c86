import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DecoderStateFile } from '../../src/serve/decoder-state-file.js';
import type { PersistedFlowState } from '../../decoders/ipfix/index.js';
import { DropWindow } from '../../src/serve/drop-window.js';
import { estimateLoss, RunMarker } from '../../src/serve/run-marker.js';
import { classifyWriteError } from '../../src/store/influx/writer.js';

describe('DropWindow (the last minute of drops, for /health)', () => {
  it('compares the newest sample with the oldest inside the window: fractions of the datagrams offered', () => {
    const w = new DropWindow(60_000);
    expect(w.fractions()).toEqual({ offered: 0, kernelDrops: 0, queueDrops: 0, kernel: 0, queue: 0, spanMs: 0 });
    w.add(0, { received: 0, kernelDrops: 0, queueDrops: 0 });
    w.add(1000, { received: 60, kernelDrops: 940, queueDrops: 0 });
    // 94 % dropped by the kernel: 940 of 1000 offered.
    expect(w.fractions()).toEqual({ offered: 1000, kernelDrops: 940, queueDrops: 0, kernel: 0.94, queue: 0, spanMs: 1000 });
    // A minute later without drops, the burst has left the window.
    for (let t = 2000; t <= 62_000; t += 1000) w.add(t, { received: 60 + (t - 1000), kernelDrops: 940, queueDrops: 0 });
    expect(w.fractions()).toEqual({ offered: 60_000, kernelDrops: 0, queueDrops: 0, kernel: 0, queue: 0, spanMs: 60_000 });
  });

  it('queue drops are a share of the offered datagrams; a counter that went back restarts from zero', () => {
    const w = new DropWindow(60_000);
    w.add(0, { received: 5000, kernelDrops: 100, queueDrops: 10 });
    w.add(30_000, { received: 6000, kernelDrops: 100, queueDrops: 12 });
    expect(w.fractions()).toMatchObject({ offered: 1000, kernelDrops: 0, queueDrops: 2, kernel: 0, queue: 0.002 });
    w.add(31_000, { received: 6500, kernelDrops: 3, queueDrops: 12 }); // socket re-opened
    expect(w.fractions()).toMatchObject({ offered: 1503, kernelDrops: 3 });
  });
});

describe('run marker (unclean shutdown detection)', () => {
  it('a clean stop removes it; a marker left behind reports the buckets between the last written one and the last heartbeat', () => {
    const dir = mkdtempSync(join(tmpdir(), 'marker-'));
    const path = join(dir, 'collector.running');
    const first = RunMarker.open(path, 1_000_000, 60);
    expect(first.unclean).toBeUndefined();
    first.marker.remove();
    expect(RunMarker.open(path, 1_100_000, 60).unclean).toBeUndefined(); // after a clean stop
    // This run writes bucket 1,080,000 and has records waiting at its last heartbeat, then dies.
    const { marker } = RunMarker.open(path, 1_000_000, 60);
    marker.bucketWritten(1_080_000);
    marker.bucketWritten(1_020_000); // a late rewrite of an older bucket does not move it back
    marker.heartbeat(1_265_000, true);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ lastBucketMs: 1_080_000, aliveMs: 1_265_000, pending: true });
    const again = RunMarker.open(path, 1_300_000, 60);
    // Buckets 1,140,000 .. 1,260,000 (3 of 60 s) were in memory only.
    expect(again.unclean).toMatchObject({ bucketsLost: 3, fromMs: 1_140_000, toMs: 1_265_000 });
  });

  it('estimates nothing lost when no records were waiting; counts from the start when no bucket was written', () => {
    const base = { pid: 1, startedMs: 600_000, aliveMs: 700_000, bucketSeconds: 60 };
    expect(estimateLoss({ ...base, lastBucketMs: 600_000, pending: false }).bucketsLost).toBe(0);
    expect(estimateLoss({ ...base, lastBucketMs: undefined, pending: true })).toMatchObject({ bucketsLost: 2, fromMs: 600_000 });
  });
});

describe('classifyWriteError (InfluxDB status classes)', () => {
  const httpError = (status: number, body: string) =>
    Object.assign(new Error(`A ${status} error occurred: ${body}`), { res: { statusCode: status } });
  it('retries 5xx, timeouts and connection errors; re-provisions on 404 database not found; dead-letters 400/413/422', () => {
    expect(classifyWriteError(httpError(400, '{"error":"field type conflict"}'))).toMatchObject({
      kind: 'dead',
      status: 400,
      errorClass: 'http_400',
    });
    expect(classifyWriteError(httpError(413, 'too large')).kind).toBe('dead');
    expect(classifyWriteError(httpError(422, 'unprocessable')).kind).toBe('dead');
    expect(classifyWriteError(httpError(404, '{"error":"database not found: \\"x\\""}'))).toMatchObject({
      kind: 'missing-database',
      errorClass: 'http_404',
    });
    expect(classifyWriteError(httpError(401, 'authorization failed'))).toMatchObject({ kind: 'auth', errorClass: 'http_401' });
    expect(classifyWriteError(httpError(403, 'forbidden')).kind).toBe('auth');
    expect(classifyWriteError(httpError(503, 'unavailable'))).toMatchObject({ kind: 'retry', errorClass: 'http_5xx' });
    expect(classifyWriteError(new Error('Request timed out'))).toMatchObject({ kind: 'retry', errorClass: 'timeout' });
    expect(classifyWriteError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toMatchObject({
      kind: 'retry',
      errorClass: 'connection',
    });
    expect(classifyWriteError('odd')).toMatchObject({ kind: 'retry', errorClass: 'other' });
  });
});

describe('DecoderStateFile.status (the decoder_state_not_saved reason)', () => {
  it('records a failed save until the next one succeeds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-'));
    writeFileSync(join(dir, 'file'), '');
    let now = 1000;
    const doc = { version: 1, savedAtMs: 0, sessions: [], exporterSampling: [] } as unknown as PersistedFlowState;
    const bad = new DecoderStateFile(join(dir, 'file', 'state.json'), 1 << 20, () => now); // its directory is a file
    expect(bad.status()).toEqual({ ok: true, lastError: undefined, lastSavedMs: undefined });
    expect(await bad.save(() => Promise.resolve(doc))).toBeInstanceOf(Error);
    expect(bad.status()).toMatchObject({ ok: false, lastSavedMs: undefined });
    expect(bad.status().lastError).toContain(join(dir, 'file'));
    const good = new DecoderStateFile(join(dir, 'state.json'), 1 << 20, () => now);
    expect(await good.save(() => Promise.reject(new Error('Invalid string length')))).toBeInstanceOf(Error);
    expect(good.status()).toEqual({ ok: false, lastError: 'Invalid string length', lastSavedMs: undefined });
    now = 3000;
    expect(await good.save(() => Promise.resolve(doc))).toBeUndefined();
    expect(good.status()).toEqual({ ok: true, lastError: undefined, lastSavedMs: 3000 });
  });
});
