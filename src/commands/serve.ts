import { readFileSync } from 'node:fs';
import { CONFIG_USAGE, ConfigError, formatConfig, loadConfig } from '../config/index.js';
import { createLogger } from '../log.js';
import { Collector } from '../serve/collector.js';
import { VERSION } from '../version.js';

const USAGE = `usage: scitags-collector [serve] [options]
Runs the collector (serve is the default command: its options work without the word): IPFIX, NetFlow v5/v9 and sFlow v5 listeners, per-link per-experiment
aggregation into the store (embedded SQLite by default), the REST API and /metrics.

${CONFIG_USAGE}`;

/** `serve`: runs until SIGTERM / SIGINT, then drains, flushes every open bucket and exits 0. */
export async function runServe(args: string[]): Promise<number> {
  let loaded;
  try {
    loaded = loadConfig({ argv: args, env: process.env, readFile: (p) => readFileSync(p, 'utf8') });
  } catch (err) {
    if (err instanceof ConfigError) {
      // Every problem on its own line, so an operator fixes them all in one round.
      for (const p of err.problems) process.stderr.write(`scitags-collector: ${p.text}\n`);
      return 2;
    }
    throw err;
  }
  if (loaded.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (loaded.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (loaded.dumpConfig) {
    process.stdout.write(formatConfig(loaded.config));
    return 0;
  }
  const config = loaded.config;
  const root = createLogger({ level: config.log.level, format: config.log.format });
  const log = root.child({ component: 'serve' });
  for (const w of loaded.warnings) log.warn(w);
  log.info('starting', { version: VERSION, node: process.version, ...(loaded.configFile ? { configFile: loaded.configFile } : {}) });
  let collector: Collector | undefined;
  try {
    collector = await Collector.create(config, { now: Date.now, log: root });
    await collector.start();
  } catch (err) {
    // A port in use, an unreadable store: one fatal line in the log's format, exit 1. What
    // did start (decode worker threads, the store) is closed, or the process would not exit.
    log.fatal(`could not start: ${(err as Error).message}`, { err });
    await collector?.stop().catch(() => undefined);
    return 1;
  }
  const paths = collector.receivePaths();
  for (const [i, { name, listener }] of collector.listeners.entries()) {
    const a = listener.address();
    const p = paths[i]!;
    const asked = listener.config.receiveBufferBytes;
    // Linux reports SO_RCVBUF doubled (socket(7)); less than asked means net.core.rmem_max capped it.
    const capped = asked > 0 && p.grantedBytes < 2 * asked;
    const fields = {
      listener: name,
      address: `udp/${a?.address.includes(':') ? `[${a.address}]` : a?.address}:${a?.port}`,
      receive: p.path === 'recvmmsg' ? 'recvmmsg' : 'dgram',
      ...(p.path === 'recvmmsg' ? {} : { fallbackReason: p.fallbackReason }),
      receiveBufferBytes: p.grantedBytes,
      receiveBufferAskedBytes: asked,
    };
    log.info(`listening for ${name} on ${fields.address}`, fields);
    if (capped) {
      log.warn(`${name}: receive buffer capped by net.core.rmem_max (raise it, e.g. sysctl -w net.core.rmem_max=${asked})`, {
        listener: name,
        receiveBufferBytes: p.grantedBytes,
        receiveBufferAskedBytes: asked,
      });
    }
  }
  log.info(
    `decoding on ${collector.stage.workerCount === 1 ? 'the main thread' : `${collector.stage.workerCount} worker threads (exporters sharded by address)`}`,
    {
      workers: collector.stage.workerCount,
    },
  );
  // Listen for the stop signals before the last start-up line: whoever waits for that line
  // (a supervisor, a test) may signal at once, and a signal with no listener yet kills the
  // process outright (seen as an exit by SIGTERM instead of a drained stop). Repeated signals
  // do not cut the shutdown short: a shell's `kill %1` signals npm and the collector alike,
  // and npm passes its own on, so two arrive at once (SIGKILL forces).
  const stopRequested = new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn(`${signal} received while stopping: still writing open buckets (SIGKILL forces an exit and loses them)`);
        return;
      }
      stopping = true;
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  // The collector's configuration has the data paths resolved: say where the files really are.
  const resolved = collector.config.store;
  const store = resolved.type === 'sqlite' ? `sqlite ${resolved.path}` : `influx ${resolved.url}/${resolved.database}`;
  log.info(`store: ${store}`, { store: resolved.type });
  if (collector.apiUrl)
    log.info(`API: ${collector.apiUrl}/ (the live page; REST at /api/v1, documentation at /docs/, metrics at /metrics)`, {
      url: collector.apiUrl,
    });
  else log.info('API: off');

  await stopRequested;
  log.info('stopping: draining the queue and writing open buckets');
  await collector.stop();
  const t = collector.stage.snapshot().totals;
  log.info(`stopped after ${t.datagrams} datagrams, ${t.records} records, ${t.decodeErrors} decode errors`, {
    datagrams: t.datagrams,
    records: t.records,
    decodeErrors: t.decodeErrors,
  });
  return collector.stopFailed ? 1 : 0;
}
