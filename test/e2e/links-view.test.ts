import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { replayDatagrams } from '../../collectors/replay.js';
import { buildFrame, buildSflowDatagram, type FlowSampleSpec } from '../builders/sflow.js';
import { freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { repoRoot } from '../support/root.js';

/**
 * The operators' view of interfaces that are not interfaces (issue 12), through a real daemon:
 * sFlow datagrams sent over loopback, the buckets flushed by SIGTERM, then read back from
 * /api/v1/traffic of a second run on the same store.
 *
 * akvorado's three sFlow captures (../shared/external-captures, third-party data used in place)
 * hold one flow sample each with input ifIndex 27, sampling rate 1024 and frame_length 1518
 * (tshark 4.0: "Input interface (ifIndex): 27", "Sampling rate: 1 out of 1024 packets",
 * "Frame Length: 1518"); their outputs are 0x3FFFFFFF (format 0: the device itself),
 * 0x40000001 (format 1: discarded, reason 1) and 0x80000007 (format 2: 7 interfaces). None of
 * the three outputs is an interface. One builder-made sample adds ifIndex 0 on the input side.
 */
const SHARED = join(repoRoot(), '..', 'shared', 'external-captures');
const AKVORADO = ['local_interface', 'discard_interface', 'multiple_interfaces'].map((n) => join(SHARED, `akvorado_sflow_${n}.pcap`));
const present = AKVORADO.every((f) => existsSync(f));
if (!present) console.warn(`links-view: ${SHARED} is absent, the akvorado sFlow tests are skipped`);

const EXPORTER = '127.0.0.1';
/** One akvorado sample: 1518 x 1024 bytes, 1024 packets. */
const AKV = { bytes: 1518 * 1024, packets: 1024, records: 1 };

/** A 1078-byte IPv6 frame (14 + 40 + 20 + 1000, plus 4 of FCS in frame_length). */
const FRAME = buildFrame({
  ip: {
    version: 6,
    trafficClass: 0,
    flowLabel: 0x10004, // SciTags 2 / 1
    src: '2001:db8:10::3',
    dst: '2001:db8:20::14',
    l4: { proto: 'tcp', srcPort: 1094, dstPort: 50010, payload: 1000 },
  },
});
const FRAME_LENGTH = FRAME.length + 4;

function sample(input: number, output: number, samplingRate: number, sequence: number): FlowSampleSpec {
  return { kind: 'flow', records: [{ kind: 'header', frame: FRAME }], input, output, samplingRate, sequence };
}

async function send(port: number, datagrams: Uint8Array[]): Promise<void> {
  const tx = createSocket('udp4');
  for (const d of datagrams) await new Promise<void>((r) => tx.send(d, port, '127.0.0.1', () => r()));
  await new Promise<void>((r) => tx.close(() => r()));
}

interface Answer {
  series: { group: Record<string, string | number | null>; totals: { bytes: number; packets: number; records: number } }[];
  totals: { bytes: number; packets: number; records: number };
}

const byGroup = (a: Answer) =>
  Object.fromEntries(
    a.series.map((s) => [
      [s.group.link, s.group.direction].filter((v) => v !== undefined).join(' '),
      { bytes: s.totals.bytes, packets: s.totals.packets, records: s.totals.records },
    ]),
  );

describe.skipIf(!present)('interfaces that are not interfaces, end to end (sFlow over loopback, SQLite)', () => {
  it('0x3FFFFFFF, discard and multiple-output formats and ifIndex 0 are the unknown link "-" (never exporter:1073741823 or exporter:0), counted once per group', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-links-'));
    const store = `sqlite:${join(dir, 'scitags.sqlite')}`;
    const ports = await freePorts();
    const t0 = Date.now();
    const daemon = await startDaemon(ports, [`--store=${store}`]);
    try {
      let datagrams = 0;
      for (const f of AKVORADO) {
        const cap = readCaptureFile(f);
        datagrams += cap.datagrams.length;
        await replayDatagrams(cap.datagrams, { host: '127.0.0.1', port: ports.sflow, speed: 0, rate: 1000, onlyDstPort: 0 });
      }
      // ifIndex 0 in, 27 out: rate 10; and one with neither side an interface (0x3FFFFFFF in, 0 out): rate 3.
      await send(ports.sflow, [
        buildSflowDatagram({ agent: '192.0.2.7', subAgent: 1, sequence: 1, samples: [sample(0, 27, 10, 1), sample(0x3fffffff, 0, 3, 2)] }),
      ]);
      datagrams += 1;
      await waitFor(async () => {
        const ex = await getJson<{ exporters: { datagrams: number }[] }>(`${daemon.apiUrl}/api/v1/exporters`);
        return ex.exporters.reduce((n, e) => n + e.datagrams, 0) === datagrams;
      });
    } finally {
      expect(await daemon.stop('SIGTERM')).toBe(0);
    }

    const again = await startDaemon(await freePorts(), [`--store=${store}`]);
    try {
      const from = Math.floor(t0 / 1000) - 3600;
      const range = `from=${from}&to=${from + 3 * 3600}&step=3h`;
      const built = { bytes: FRAME_LENGTH * 10, packets: 10, records: 1 };
      const neither = { bytes: FRAME_LENGTH * 3, packets: 3, records: 1 };
      const sum = (...xs: { bytes: number; packets: number; records: number }[]) => ({
        bytes: xs.reduce((n, x) => n + x.bytes, 0),
        packets: xs.reduce((n, x) => n + x.packets, 0),
        records: xs.reduce((n, x) => n + x.records, 0),
      });
      const byLinkDirection = await getJson<Answer>(`${again.apiUrl}/api/v1/traffic?${range}&groupBy=link,direction`);
      expect(byGroup(byLinkDirection)).toEqual({
        [`${EXPORTER}:27 in`]: sum(AKV, AKV, AKV),
        [`${EXPORTER}:- out`]: sum(AKV, AKV, AKV, neither),
        [`${EXPORTER}:- in`]: sum(built, neither),
        [`${EXPORTER}:27 out`]: built,
      });
      expect(byLinkDirection.totals).toMatchObject(sum(AKV, AKV, AKV, built, neither));
      // Without direction the sample with neither side an interface counts once in "-", not twice.
      for (const groupBy of ['link', 'exporter,link']) {
        const byLink = await getJson<Answer>(`${again.apiUrl}/api/v1/traffic?${range}&groupBy=${groupBy}`);
        expect(byGroup(byLink), groupBy).toEqual({
          [`${EXPORTER}:27`]: sum(AKV, AKV, AKV, built),
          [`${EXPORTER}:-`]: sum(AKV, AKV, AKV, built, neither),
        });
        expect(byLink.totals).toMatchObject(sum(AKV, AKV, AKV, built, neither));
      }
      // /api/v1/links lists the two links that carried traffic, with their totals per direction.
      const links = await getJson<{
        links: { link: string; ifIndex: number | null; source: string; traffic: unknown }[];
        omittedLinks: number;
      }>(`${again.apiUrl}/api/v1/links?from=${from}&to=${from + 3 * 3600}`);
      expect(links.links.map((l) => [l.link, l.ifIndex, l.source, l.traffic])).toEqual([
        [`${EXPORTER}:-`, null, 'traffic', { in: sum(built, neither), out: sum(AKV, AKV, AKV, neither) }],
        [`${EXPORTER}:27`, 27, 'traffic', { in: sum(AKV, AKV, AKV), out: built }],
      ]);
      expect(links.omittedLinks).toBe(0);
    } finally {
      expect(await again.stop('SIGINT')).toBe(0);
    }
  }, 60_000);
});
