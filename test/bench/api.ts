import { buildApi } from '../../src/api/index.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics/index.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { snapshotOf } from '../../src/pipeline/snapshot.js';
import { RegistryService } from '../../src/registry/service.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';
import type { TrafficRow } from '../../src/store/types.js';
import { f, ipfixMessage, ipfixTemplateSet, type TemplateDef } from '../builders/ipfix.js';
import type { BenchOutput, BenchRow } from './common.js';
import { median } from './common.js';

/**
 * API route latency at random decoder state sizes (issue 11: `GET /api/v1/exporters` with 128
 * heavy sessions took 24.6 s with the event loop blocked). For each size: sessions (1..128,
 * spread over up to 64 exporter addresses) x IPFIX templates per session (1..1024) x fields
 * per template (1..512), capped at 4 M fields in all, fed to a DatagramDecoder as template
 * sets; then the snapshot the collector's timer publishes (snapshotOf, off the request path)
 * and, over it, each route answered by fastify's inject (the full request path: hooks,
 * validation, serialisation), 20 requests per route after one warm-up request; the table shows the median and the
 * worst request per route, and the snapshot build time. Sizes come from a fixed seed.
 */

const SIZES = 6;
const REQUESTS = 20;
const MAX_FIELDS = 4_000_000;
const T0 = Date.UTC(2025, 0, 1, 12);

/** mulberry32: a small seeded PRNG, so every run measures the same sizes. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Size {
  sessions: number;
  templates: number;
  fields: number;
}

function sizes(): Size[] {
  const rnd = prng(11);
  const pick = (lo: number, hi: number) => Math.round(Math.exp(Math.log(lo) + rnd() * (Math.log(hi) - Math.log(lo))));
  const out: Size[] = [{ sessions: 128, templates: 64, fields: 480 }];
  while (out.length < SIZES) {
    const s = { sessions: pick(1, 128), templates: pick(1, 1024), fields: pick(1, 512) };
    if (s.sessions * s.templates * s.fields <= MAX_FIELDS) out.push(s);
  }
  return out;
}

function feed(decoder: DatagramDecoder, s: Size): void {
  const fields = Array.from({ length: s.fields }, (_, i) => f(1 + (i % 200), 4));
  for (let session = 0; session < s.sessions; session++) {
    const address = `192.0.2.${1 + (session % 64)}`;
    const port = 40000 + session;
    // Several templates per message, below 64 KiB.
    const perMessage = Math.max(1, Math.floor(60_000 / (4 + 4 * s.fields)));
    for (let first = 0; first < s.templates; first += perMessage) {
      const templates: TemplateDef[] = [];
      for (let id = first; id < Math.min(s.templates, first + perMessage); id++) templates.push({ id: 256 + id, fields });
      const msg = ipfixMessage({ domain: 1, seq: 0, exportSecs: T0 / 1000 }, [ipfixTemplateSet(templates)]);
      decoder.decode(msg, address, port, T0);
    }
  }
}

const ROUTES = [
  '/api/v1/exporters',
  '/api/v1/links',
  '/api/v1/experiments',
  '/health',
  '/metrics',
  '/api/v1/traffic?from=2025-01-01T11:00:00Z&to=2025-01-01T12:00:00Z&groupBy=exporter,class',
];

export async function benchApi(): Promise<BenchOutput> {
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const registry = new RegistryService(
    { url: '', refreshSeconds: 3600, cacheFile: '', timeoutMs: 1000 },
    { now: () => T0, fetchText: () => Promise.reject(new Error('offline')), log: silentLogger() },
  );
  const metrics = createMetrics({ registryStatus: () => registry.status(), now: () => T0 });
  const store = createSqliteStore({ path: ':memory:' });
  const traffic: TrafficRow[] = [];
  for (let i = 0; i < 2000; i++) {
    traffic.push({
      bucketStartMs: T0 - 3_600_000 + (i % 60) * 60_000,
      bucketSeconds: 60,
      exporter: `192.0.2.${1 + (i % 64)}`,
      inIf: i % 20,
      outIf: 100 + (i % 7),
      trafficClass: 'scitags',
      community: 2,
      activity: 15,
      registered: true,
      bytes: 1000 + i,
      packets: 10,
      records: 1,
    });
  }
  await store.writeRows(traffic);
  for (const s of sizes()) {
    const decoder = new DatagramDecoder(DEFAULT_DECODER_OPTIONS);
    feed(decoder, s);
    const t = performance.now();
    const snap = snapshotOf(decoder, T0);
    const snapshotMs = performance.now() - t;
    const live = snap.exporters.reduce((n, e) => n + e.liveTemplates, 0);
    const app = buildApi({
      store,
      registry,
      links: [],
      learnedInterfaces: () => snap.interfaces,
      exporters: () => snap.exporters,
      health: () => ({ status: 'ok', checks: {} }),
      metricsRegistry: metrics.registry,
      bucketSeconds: 60,
      now: () => T0,
      security: { rateLimitPerMinute: 0 },
    });
    const config = `${s.sessions} sessions x ${s.templates} templates x ${s.fields} fields (${live} live templates, ${snap.exporters.length} exporters)`;
    rows.push({ bench: 'api', config, metric: 'snapshotMs (timer, off the request path)', unit: 'ms', samples: [snapshotMs] });
    for (const url of ROUTES) {
      const times: number[] = [];
      // One request first, not counted: fastify compiles a route's validator and serialiser on first use.
      await app.inject({ url });
      for (let i = 0; i < REQUESTS; i++) {
        const start = performance.now();
        const r = await app.inject({ url });
        times.push(performance.now() - start);
        if (r.statusCode !== 200) throw new Error(`${url}: HTTP ${r.statusCode}`);
      }
      const route = url.split('?')[0]!;
      rows.push({ bench: 'api', config, metric: `${route} median`, unit: 'ms', samples: [median(times)] });
      rows.push({ bench: 'api', config, metric: `${route} worst`, unit: 'ms', samples: [Math.max(...times)] });
    }
    await app.close();
  }
  await store.close();
  notes.push(`api: ${REQUESTS} requests per route and size, by inject (no socket); sizes from a fixed seed, at most ${MAX_FIELDS} fields`);
  return { rows, notes };
}
