import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { captureLog } from '../support/logs.js';
import { fixturePath } from '../support/expected.js';
import { repoRoot } from '../support/root.js';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// Worker threads run compiled code: the stage is loaded from dist/ (npm test builds first).
type WorkersModule = typeof import('../../src/pipeline/workers.js');
const load = async (): Promise<WorkersModule> =>
  (await import(pathToFileURL(join(repoRoot(), 'dist', 'src', 'pipeline', 'workers.js')).href)) as WorkersModule;

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a decode worker that dies', () => {
  it('is replaced: the death is logged and counted, its exporters are decoded again by the new worker', async () => {
    const { WorkerDecodeStage } = await load();
    const { log, lines } = captureLog('warn');
    let records = 0;
    const stage = new WorkerDecodeStage(
      2,
      { defaultSamplingRate: 1, samplingRules: [], flowLimits: {}, crashDir: '', queueSize: 10_000 },
      { bucketSeconds: 60 },
      {
        now: Date.now,
        log: log.child({ component: 'decode' }),
        logLevel: 'warn',
        addParts: (parts) => {
          for (let o = 7; o < parts.length; o += 8) records += parts[o]!;
        },
      },
      undefined,
    );
    await stage.ready();
    const datagrams = readCaptureFile(fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap')).datagrams;
    const send = (): void => {
      for (const d of datagrams)
        stage.submit({ payload: d.payload, srcAddr: '127.0.0.9', srcPort: 4000, localPort: 4739, receivedMs: Date.now() }, 'ipfix');
    };
    send();
    // truth: 43 records in the capture's 9 datagrams
    await until(() => records === 43);
    // A bug outside the decoders' own isolation: a batch whose length exceeds its buffer makes
    // the worker's batch reader throw, which nothing in the worker catches.
    const slots = (stage as unknown as { slots: { worker: import('node:worker_threads').Worker }[] }).slots;
    for (const s of slots) s.worker.postMessage({ type: 'batch', buffer: new ArrayBuffer(8), length: 100, count: 1 });
    await until(() => stage.restarts === 2);
    // Each death: the error (with the worker's stack) and the exit, both naming the worker.
    const failed = lines.filter((l) => l.msg.includes('failed (restarting it'));
    expect(failed.map((l) => [l.level, l.component, l.worker]).sort()).toEqual([
      ['error', 'decode', 0],
      ['error', 'decode', 1],
    ]);
    // The worker's own error, serialized by pino on the main thread: the bad batch's length.
    expect(failed[0]!.err).toEqual({
      type: 'RangeError',
      message: 'Invalid typed array length: 100',
      stack: expect.stringContaining('at BatchReader.read'),
    });
    // The new workers start empty (templates are re-learnt from the next refresh): the capture
    // again, templates first, is counted in full.
    send();
    await until(() => records === 86);
    const snap = await stage.refresh();
    expect(snap.exporters.find((e) => e.address === '127.0.0.9')).toMatchObject({ datagrams: 9, records: 43 });
    await stage.stop();
  }, 30_000);
});
