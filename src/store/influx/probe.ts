import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../../log.js';
import { silentLogger } from '../../log.js';
import type { StoreProbeHealth } from '../types.js';
import { classifyWriteError } from './writer.js';

export interface InfluxProbeConfig {
  /** The store's base URL (its path prefix, if any, is kept: <url>/ping). */
  url: string;
  /** The writer's auth header (Basic or Token), if any. */
  headers: Record<string, string>;
  /** https only: the writer's certificate checks. */
  tls: { rejectUnauthorized: boolean; ca?: Buffer };
  /** Between probes (> 0). */
  intervalMs: number;
  /** The whole request, connect to status line. */
  timeoutMs: number;
}

/**
 * An active liveness probe of InfluxDB: GET /ping (204 on 1.x and the v1 API of 2.x) every
 * interval, but only when no write succeeded during the last interval (a write is proof
 * enough). Writes happen once a bucket, so without it a stopped or frozen server shows in
 * /health only at the next bucket. One probe at a time; the timer is unref'd.
 */
export class InfluxProbe {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: { destroy(): void } | undefined;
  private stopped = true;
  /** Bumped by stop(): a probe cut short by it records nothing. */
  private generation = 0;
  private readonly s: StoreProbeHealth = {
    ok: undefined,
    probes: 0,
    failures: 0,
    consecutiveFailures: 0,
    lastProbeMs: undefined,
    lastError: undefined,
    lastErrorClass: undefined,
    lastErrorStatus: undefined,
  };

  constructor(
    private readonly config: InfluxProbeConfig,
    /** When a write last succeeded (ms since the epoch). */
    private readonly lastWriteOkMs: () => number | undefined,
    private readonly log: Logger = silentLogger(),
    private readonly now: () => number = Date.now,
  ) {}

  health(): StoreProbeHealth {
    return { ...this.s };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.generation++;
    this.inFlight?.destroy();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick().finally(() => this.schedule());
    }, this.config.intervalMs);
    this.timer.unref();
  }

  /** One interval: probes unless a write succeeded within it (then that write counts as ok). */
  async tick(): Promise<void> {
    const okMs = this.lastWriteOkMs();
    if (okMs !== undefined && this.now() - okMs < this.config.intervalMs) {
      this.s.ok = true;
      this.s.consecutiveFailures = 0;
      return;
    }
    await this.probe();
  }

  /** Sends GET /ping once and records the outcome; resolves to whether InfluxDB answered 2xx. */
  async probe(): Promise<boolean> {
    if (this.inFlight) return this.s.ok !== false;
    const generation = this.generation;
    const outcome = await this.ping();
    if (generation !== this.generation) return false;
    this.s.probes++;
    this.s.lastProbeMs = this.now();
    if (outcome.ok) {
      if (this.s.ok === false) this.log.info('InfluxDB answers /ping again');
      this.s.ok = true;
      this.s.consecutiveFailures = 0;
      return true;
    }
    if (this.s.ok !== false)
      this.log.warn(`InfluxDB liveness probe failed (${outcome.errorClass}: ${outcome.message})`, { status: outcome.status });
    this.s.ok = false;
    this.s.failures++;
    this.s.consecutiveFailures++;
    this.s.lastError = outcome.message;
    this.s.lastErrorClass = outcome.errorClass;
    this.s.lastErrorStatus = outcome.status;
    return false;
  }

  private ping(): Promise<{ ok: true } | { ok: false; errorClass: string; status: number | undefined; message: string }> {
    const base = new URL(this.config.url);
    const https = base.protocol === 'https:';
    const path = `${base.pathname.replace(/\/+$/, '')}/ping`;
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: Parameters<typeof resolve>[0]): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.inFlight = undefined;
        resolve(r);
      };
      const onResponse = (res: IncomingMessage): void => {
        res.resume();
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) finish({ ok: true });
        else
          finish({
            ok: false,
            errorClass: status >= 500 ? 'http_5xx' : `http_${status}`,
            status,
            message: `GET /ping answered HTTP ${status}`,
          });
      };
      const options = {
        method: 'GET',
        hostname: base.hostname.replace(/^\[|\]$/g, ''),
        port: Number(base.port || 8086),
        path,
        headers: this.config.headers,
        // A fresh connection each time: a kept-alive socket says nothing about accepting new ones.
        agent: false as const,
        ...(https
          ? { rejectUnauthorized: this.config.tls.rejectUnauthorized, ...(this.config.tls.ca ? { ca: this.config.tls.ca } : {}) }
          : {}),
      };
      const req = https ? httpsRequest(options, onResponse) : httpRequest(options, onResponse);
      this.inFlight = req;
      req.on('error', (err) => {
        const c = classifyWriteError(err);
        finish({ ok: false, errorClass: c.errorClass, status: undefined, message: `GET /ping: ${c.message}` });
      });
      // A frozen server (SIGSTOP) accepts the connection in the kernel and never answers.
      const timer = setTimeout(() => {
        finish({ ok: false, errorClass: 'timeout', status: undefined, message: `GET /ping timed out after ${this.config.timeoutMs} ms` });
        req.destroy();
      }, this.config.timeoutMs);
      timer.unref();
      req.end();
    });
  }
}
