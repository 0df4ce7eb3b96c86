/**
 * A decode worker thread: decodes the batches of its exporters, sums records into partial
 * bucket cells with numeric keys (the same Aggregator.add the inline path uses) and sends
 * those sums to the main thread every `flushMs`. The main thread merges, writes and serves.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { flowStateFrom } from '../../decoders/ipfix/index.js';
import { createAggregator } from '../aggregate/index.js';
import { createForwardingLogger } from '../log.js';
import { EVERY_PAIR_REGISTERED } from '../enrich/series.js';
import { Enricher } from '../enrich/enricher.js';
import { Nat64Prefixes } from '../enrich/nat64.js';
import { Nat64TopSketches } from '../enrich/nat64-top.js';
import { SiteLookup } from '../enrich/site-lookup.js';
import { MarkingCounts, MarkingIndex } from '../fireflies/marking.js';
import { BatchReader } from './shard.js';
import { InlineDecodeStage } from './stage.js';
import type { FromWorker, ToWorker, WorkerFirefly, WorkerInit } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('src/pipeline/worker.js runs only as a worker thread');
const init = workerData as WorkerInit;
const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer ?? []);

// Log lines are rate-limited here, then printed by the main thread's logger.
const log = createForwardingLogger({ level: init.logLevel, emit: (level, msg, fields) => post({ type: 'log', level, msg, fields }) });

// Workers keep every pair; the main thread applies the registry when it merges (addParts).
const neverWritten = {
  kind: 'worker',
  writeRows: () => Promise.reject(new Error('decode workers hand their sums to the main thread')),
};
const aggregator = createAggregator(init.aggregation, { now: Date.now, store: neverWritten, registry: () => EVERY_PAIR_REGISTERED });
const siteAggregator = createAggregator(
  { ...init.aggregation, keyBy: 'sites' },
  { now: Date.now, store: neverWritten, registry: () => EVERY_PAIR_REGISTERED },
);
const enricher = new Enricher(new Nat64Prefixes(init.nat64Prefixes), aggregator, siteAggregator, new SiteLookup(init.sites));
const marking = { index: new MarkingIndex(), counts: new MarkingCounts() };
marking.index.apply(init.marking);
enricher.marking = marking;
const nat64Top =
  init.nat64TopN !== undefined && init.nat64TopN > 0 && init.aggregation.bucketSeconds !== undefined
    ? new Nat64TopSketches(init.nat64TopN, init.aggregation.bucketSeconds)
    : undefined;
enricher.setNat64Top(nat64Top);

let saved;
try {
  // The main thread checked the file (parseFlowState); only the state is built here.
  saved = init.saved ? flowStateFrom(init.saved, init.stage.flowLimits) : undefined;
} catch (err) {
  log.warn(`ignoring this worker's share of the decoder state: ${(err as Error).message}`);
}
// Fireflies are few (one per transfer start / end): each batch's go to the main thread as
// one message, where the flow table and the forwarder live. The payload is copied: the
// batch buffer goes back to the main thread for reuse.
let fireflies: WorkerFirefly[] = [];
const fireflyTarget = {
  accept: (firefly: WorkerFirefly['firefly'], receivedMs: number, exporterAddr: string, payload: Uint8Array) =>
    void fireflies.push({ firefly, receivedMs, exporterAddr, payload: payload.slice() }),
};
const stage = new InlineDecodeStage(init.stage, { now: Date.now, log, aggregator: enricher, fireflies: fireflyTarget }, saved);
const reader = new BatchReader();
const decode = stage.decodeNow.bind(stage);

function flush(): void {
  const { parts, exporters } = aggregator.takeParts();
  const sites = siteAggregator.takeParts();
  const counted = marking.counts.take();
  if (parts.length > 0 || sites.parts.length > 0 || counted.length > 0) {
    post({ type: 'sums', parts, exporters, siteParts: sites.parts, siteExporters: sites.exporters, marking: counted }, [
      parts.buffer as ArrayBuffer,
      sites.parts.buffer as ArrayBuffer,
    ]);
  }
  const top = nat64Top?.take();
  if (top !== undefined && top.length > 0) {
    post(
      { type: 'nat64Top', parts: top },
      top.map((p) => p.entries.buffer as ArrayBuffer),
    );
  }
}

const timer = setInterval(flush, init.flushMs);

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'batch': {
      const n = reader.read(m.buffer, m.length, decode);
      if (fireflies.length > 0) {
        post({ type: 'fireflies', items: fireflies });
        fireflies = [];
      }
      post({ type: 'done', count: Math.max(n, m.count), buffer: m.buffer }, [m.buffer]);
      return;
    }
    case 'snapshot':
      void stage.refresh().then((snapshot) => post({ type: 'snapshot', id: m.id, snapshot }));
      return;
    case 'state':
      void stage.persistentState(m.nowMs).then((state) => post({ type: 'state', id: m.id, state }));
      return;
    case 'sites':
      enricher.setSites(new SiteLookup(m.sites));
      return;
    case 'marking':
      marking.index.apply(m.update);
      return;
    case 'stop':
      // Messages arrive in order: every batch sent before 'stop' has been decoded.
      clearInterval(timer);
      flush();
      post({ type: 'stopped' });
      return;
  }
});
void stage.ready().then(() => post({ type: 'ready' }));
