/**
 * The IPv4 destinations behind NAT64 end to end (issue 14): IPFIX over loopback UDP into the
 * real daemon (one and two decode workers), a stop and a restart on the same store (the
 * second run continues the stored top lists of the open bucket), then
 * GET /api/v1/transition/nat64-destinations of a third run. Fewer distinct addresses than
 * transition.nat64TopN, so every number is exact: the sums of the records sent, twice.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { f, templatesThenData } from '../builders/ipfix.js';
import { freePorts, getJson, sendUdp, startDaemon, waitFor } from '../support/daemon.js';
import { influxdAvailable } from '../support/influxd.js';
import { useInfluxd } from '../support/use-influxd.js';

const V6 = [
  f('sourceIPv6Address', 16),
  f('destinationIPv6Address', 16),
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
  f('ingressInterface', 4),
  f('egressInterface', 4),
];
const V4 = [f('sourceIPv4Address', 4), f('destinationIPv4Address', 4), f('octetDeltaCount', 8), f('packetDeltaCount', 8)];

// [src, dst, bytes, packets, in, out]
const V6_RECORDS: [string, string, number, number, number, number][] = [
  ['2001:db8:a::2', '64:ff9b::c000:221', 4000, 40, 1, 2], // to 192.0.2.33
  ['2001:db8:a::3', '64:ff9b::c000:221', 1000, 10, 1, 2], // to 192.0.2.33 again
  ['2001:db8:a::4', '64:ff9b::cb00:7105', 2500, 25, 1, 2], // to 203.0.113.5
  ['64:ff9b::c633:6401', '2001:db8:b::9', 500, 5, 2, 1], // an answer from 198.51.100.1: the source is the NAT64 side
  ['2001:db8:b::1', '2001:db8:a::1', 7000, 70, 2, 1], // no NAT64: not listed
];
const V4_RECORDS: [string, string, number, number][] = [['10.0.0.1', '192.0.2.1', 9000, 90]]; // IPv4: not listed

const EXPECTED = [
  ['192.0.2.33', 5000, 50],
  ['203.0.113.5', 2500, 25],
  ['198.51.100.1', 500, 5],
];

function datagrams(): Uint8Array[] {
  return templatesThenData([
    { fields: V6, records: V6_RECORDS },
    { fields: V4, records: V4_RECORDS },
  ]);
}

interface Answer {
  approximate: boolean;
  topN: number;
  buckets: number;
  omitted: number;
  destinations: { address: string; bytes: number; packets: number; errorBytes: number; buckets: number }[];
}

/** Two runs sending the records (the second continues the open bucket), then the queries on a third. */
async function runAndQuery(store: string, extra: string[]) {
  const t0 = Date.now();
  const args = [`--store=${store}`, ...extra];
  for (let round = 0; round < 2; round++) {
    const ports = await freePorts();
    const daemon = await startDaemon(ports, args);
    try {
      await sendUdp(ports.ipfix, datagrams());
      await waitFor(async () => {
        const ex = await getJson<{ exporters: { records: number }[] }>(`${daemon.apiUrl}/api/v1/exporters`);
        return ex.exporters.reduce((n, e) => n + e.records, 0) === V6_RECORDS.length + V4_RECORDS.length;
      });
    } finally {
      expect(await daemon.stop('SIGTERM')).toBe(0);
    }
  }
  const again = await startDaemon(await freePorts(), args);
  try {
    const from = Math.floor(t0 / 1000) - 3600;
    const range = `from=${from}&to=${from + 3 * 3600}`;
    const url = `${again.apiUrl}/api/v1/transition/nat64-destinations?${range}`;
    return {
      all: await getJson<Answer>(url),
      two: await getJson<Answer>(`${url}&limit=2`),
      tooMany: await fetch(`${url}&limit=101`),
    };
  } finally {
    expect(await again.stop('SIGTERM')).toBe(0);
  }
}

function check(a: Awaited<ReturnType<typeof runAndQuery>>): void {
  expect(a.all.approximate).toBe(true);
  expect(a.all.topN).toBe(100);
  expect(a.all.destinations.map((d) => [d.address, d.bytes, d.packets])).toEqual(
    EXPECTED.map(([ip, b, p]) => [ip, 2 * (b as number), 2 * (p as number)]),
  );
  // Fewer addresses than N per bucket: exact, no error.
  for (const d of a.all.destinations) expect(d.errorBytes).toBe(0);
  expect(a.all.omitted).toBe(0);
  expect(a.two.destinations.map((d) => d.address)).toEqual(['192.0.2.33', '203.0.113.5']);
  expect(a.two.omitted).toBe(1);
  expect(a.tooMany.status).toBe(400);
}

describe('NAT64 IPv4 destinations (IPFIX over loopback, stop and restart on one store)', () => {
  it('SQLite, --workers=1: exact bytes and packets per IPv4 destination', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-nat64-top-'));
    check(await runAndQuery(`sqlite:${join(dir, 's.sqlite')}`, ['--workers=1']));
  });

  it("SQLite, --workers=2: the same answers from the workers' partial sketches", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-nat64-top-'));
    check(await runAndQuery(`sqlite:${join(dir, 's.sqlite')}`, ['--workers=2']));
  });
});

describe.skipIf(!influxdAvailable())('NAT64 IPv4 destinations on a real InfluxDB', () => {
  const influxd = useInfluxd();

  it('the same answers from scitags_nat64_top', async () => {
    check(await runAndQuery(`influx://127.0.0.1:${influxd().port}/scitags`, ['--workers=1']));
  });
});
