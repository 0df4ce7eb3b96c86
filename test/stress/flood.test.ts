import { describe, expect, it } from 'vitest';
import { runFlood } from '../support/flood.js';

/**
 * Issue 11: a legitimate exporter and a spoofing flood of new sessions at the same time
 * (test/support/flood.ts), with the API polled throughout. The figures for the README come
 * from `npm run bench -- flood`; this test asserts the counts: the legitimate exporter's
 * totals are exact and every datagram offered is either accepted or counted as dropped, by
 * reason. The flood comes from 16 addresses, so each opens new sessions faster than
 * decoder.maxNewSessionsPerSecondPerExporter (100/s) and the session rate limit has drops to
 * count; it is bounded (3 s, at most 30,000 new sessions).
 */
describe('legitimate exporter during a spoofed new-session flood', () => {
  it('keeps the legitimate totals exact and counts every dropped datagram', async () => {
    const r = await runFlood({ seconds: 3, legitRate: 2000, floodAddresses: 16, maxFloodDatagrams: 30_000 });
    console.log(`flood: ${JSON.stringify(r)}`);
    expect(r.exitCode).toBe(0);
    expect(r.settled).toBe(true);
    expect(r.sendErrors).toEqual({ legit: 0, flood: 0 });
    expect(r.offered.flood).toBeGreaterThan(0);
    expect(r.offered.flood).toBeLessThanOrEqual(30_000);
    // 16 addresses x 100 new sessions/s is far below what the flood offers: most are refused.
    expect(r.dropped.sessionRateLimit).toBeGreaterThan(0);
    // At the socket: every offered datagram received or dropped by the kernel.
    expect(r.received + r.dropped.kernel).toBe(r.offered.total);
    // In the collector: every received datagram reached the decoder or was dropped by the queue,
    // and the rate-limit drops among them are the same in /metrics and per exporter in the API.
    expect(r.decoded + r.dropped.queue).toBe(r.received);
    expect([r.dropped.rateLimit, r.dropped.sessionRateLimit]).toEqual([r.apiRateLimited.datagrams, r.apiRateLimited.sessions]);
    // The legitimate exporter: every datagram decoded, every record stored, once.
    expect(r.legit.datagrams).toBe(r.legit.sent);
    expect(r.legit.records).toBe(r.legit.sent * 10);
    expect(r.legit.stored).toBe(r.legit.sent * 10);
    expect(r.api.exporters.requests).toBeGreaterThan(0);
    expect(r.api.traffic.requests).toBeGreaterThan(0);
  });
});
