/**
 * A spoofing flood of new IPFIX sessions, as fast as one Node process can open them on
 * loopback: every datagram (a template and one data record) comes from a fresh socket, i.e.
 * a transport session the collector has never seen, from one of ADDRESSES source addresses
 * (127.1.x.y: Linux routes the whole 127/8 block to lo, so they stand in for spoofed
 * exporters). Runs as its own process so it does not share an event loop with the
 * legitimate sender or the API poller.
 *
 *   node dist/test/support/flood-sender.js PORT SECONDS ADDRESSES [MAX_DATAGRAMS]
 *
 * Prints one JSON line: {"sent": N, "errors": E, "ms": T}. MAX_DATAGRAMS (default unlimited)
 * bounds the flood for tests that must count every datagram.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { ipfixDataSet, ipfixMessage, ipfixTemplateSet } from '../builders/ipfix.js';
import { rec, V4 } from './budget-probes.js';

/** Sockets opened at once: enough to keep the kernel busy, few enough to stay under the fd limit. */
const PARALLEL = 64;

async function main(): Promise<void> {
  const [port, seconds, addresses, max] = process.argv.slice(2).map(Number);
  if (!(port! > 0 && seconds! > 0 && addresses! > 0)) throw new Error('usage: flood-sender PORT SECONDS ADDRESSES [MAX_DATAGRAMS]');
  const limit = max !== undefined && max > 0 ? max : Infinity;
  const datagram = ipfixMessage({ seq: 0, exportSecs: Math.floor(Date.now() / 1000) }, [
    ipfixTemplateSet([{ id: 256, fields: V4 }]),
    ipfixDataSet(256, V4, [rec(0)]),
  ]);
  const started = Date.now();
  const end = started + seconds! * 1000;
  let sent = 0;
  let errors = 0;
  let next = 0;
  const one = async (): Promise<void> => {
    const a = next++ % addresses!;
    const socket = createSocket('udp4');
    try {
      socket.bind(0, `127.1.${Math.floor(a / 254) + 1}.${(a % 254) + 1}`);
      await once(socket, 'listening');
      await new Promise<void>((resolve, reject) => socket.send(datagram, port!, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
      sent++;
    } catch {
      errors++;
    } finally {
      socket.close();
    }
  };
  while (Date.now() < end && sent + errors < limit) {
    const n = Math.min(PARALLEL, limit - sent - errors);
    await Promise.all(Array.from({ length: n }, one));
  }
  process.stdout.write(`${JSON.stringify({ sent, errors, ms: Date.now() - started })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
});
