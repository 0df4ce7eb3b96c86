/**
 * Per-exporter rate limits, checked before a datagram is decoded: a token bucket per
 * exporter address for datagrams and one for new transport sessions, refilled by the
 * datagrams' receive times (no timers). A bucket holds one second's worth of tokens, so a
 * burst up to the rate is accepted at once.
 */

/** New sessions per second and exporter address allowed by default (decoder.maxNewSessionsPerSecondPerExporter). */
export const DEFAULT_NEW_SESSIONS_PER_SECOND = 100;

export interface RateLimits {
  /** Datagrams per second per exporter address; 0 is unlimited. */
  datagramsPerSecond: number;
  /** New IPFIX / NetFlow v9 / v5 transport sessions per second per exporter address; 0 is unlimited. */
  newSessionsPerSecond: number;
}

export interface TokenBucket {
  tokens: number;
  lastMs: number;
}

export function newBucket(rate: number, nowMs: number): TokenBucket {
  return { tokens: rate, lastMs: nowMs };
}

/** Takes one token if there is one (true), refilling `rate` per second since the last call. */
export function takeToken(b: TokenBucket, rate: number, nowMs: number): boolean {
  if (nowMs > b.lastMs) {
    b.tokens = Math.min(rate, b.tokens + ((nowMs - b.lastMs) * rate) / 1000);
    b.lastMs = nowMs;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  return false;
}
