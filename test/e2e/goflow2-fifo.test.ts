/**
 * serve --input goflow2:FIFO end to end: the corpus captures, converted to the FlowMessages
 * goflow2 would have written for them, are written into a FIFO beside the daemon by two
 * writers one after the other (goflow2 restarted: the FIFO is opened again), and come back
 * from /api/v1/traffic exactly as the truth files say, each record under its router. A first
 * writer sends a stream that cannot be framed (a length over the cap): counted, discarded to
 * its end, and the next writer is read from a message boundary again.
 */
import { mkdtempSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import { CORPUS_CAPTURES, expectedCorpusGroups, fixturePath, trafficGroups, type TrafficAnswer } from '../support/expected.js';
import { captureToGoflow2 } from '../support/goflow2.js';

interface Exporters {
  exporters: { address: string; datagrams: number; records: number; protocols: string[]; errorsByReason: object }[];
}

async function writeAll(fifo: string, parts: Buffer[]): Promise<void> {
  // Opening for writing waits for the reader (the daemon), as goflow2's file output does.
  const fh = await open(fifo, 'w');
  for (const p of parts) await fh.write(p);
  await fh.close();
}

describe('serve --input goflow2:FIFO', () => {
  it('reads two writers in turn and the traffic API gives the truth totals', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-goflow2-'));
    const fifo = join(dir, 'goflow2.fifo');
    execFileSync('mkfifo', [fifo]);
    const store = `--store=sqlite:${join(dir, 'scitags.sqlite')}`;
    const t0 = Date.now();
    const streams = CORPUS_CAPTURES.map((c) => captureToGoflow2(fixturePath(`${c.name}.pcap`)));
    const daemon = await startDaemon(await freePorts(), [store, `--input=goflow2:${fifo}`], {}, dir);
    try {
      // Not goflow2 -format=bin: a length prefix of 2^35 (over the cap), then 100 bytes: 106 discarded.
      await writeAll(fifo, [Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), Buffer.alloc(100, 0x41)]);
      // A FIFO ends when its last writer closes: the next one must come after the daemon saw it.
      await waitFor(() => Promise.resolve(daemon.output().includes('waiting for the next writer')));
      // The next writer: the IPFIX captures; the one after it, once the daemon saw it close
      // (as goflow2 restarting: a writer opening while the old read end is still being closed
      // races the reopen), the sFlow one.
      const ends = () => daemon.output().split('waiting for the next writer').length - 1;
      await writeAll(fifo, streams.slice(0, 2));
      await waitFor(() => Promise.resolve(ends() >= 2));
      await writeAll(fifo, streams.slice(2));
      const records = 43 + 43 + 1448;
      await waitFor(async () => (await getJson<Exporters>(`${daemon.apiUrl}/api/v1/exporters`)).exporters[0]?.records === records);
      const ex = await getJson<Exporters>(`${daemon.apiUrl}/api/v1/exporters`);
      expect(ex.exporters.map((e) => [e.address, e.datagrams, e.records, e.protocols, e.errorsByReason])).toEqual([
        ['127.0.0.1', records, records, ['goflow2'], {}],
      ]);
      expect(daemon.output()).toMatch(/goflow2 input .*goflow2\.fifo: end of stream; waiting for the next writer/);
      expect(daemon.output()).toMatch(
        /FlowMessage length 34359738368 over the cap of 65536 bytes \(at offset 0\); the rest of this stream is discarded/,
      );
      const metrics = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
      const input = `input="goflow2:${fifo}"`;
      expect(metrics).toContain(`scitags_goflow2_messages_total{${input}} ${records}`);
      expect(metrics).toContain(`scitags_goflow2_stream_errors_total{${input},reason="limit-exceeded"} 1`);
      expect(metrics).toContain(`scitags_goflow2_discarded_bytes_total{${input}} 106`);
      expect(metrics).toContain(`scitags_records_decoded_total{protocol="goflow2",exporter="127.0.0.1"} ${records}`);
    } finally {
      expect(await daemon.stop('SIGTERM')).toBe(0);
    }
    // Read back from the store by a daemon without the input.
    const again = await startDaemon(await freePorts(), [store]);
    try {
      const from = Math.floor(t0 / 1000) - 3600;
      const answer = await getJson<TrafficAnswer>(
        `${again.apiUrl}/api/v1/traffic?from=${from}&to=${from + 3 * 3600}&step=3h&groupBy=community,activity`,
      );
      expect(trafficGroups(answer)).toEqual(expectedCorpusGroups());
    } finally {
      expect(await again.stop('SIGINT')).toBe(0);
    }
  });
});
