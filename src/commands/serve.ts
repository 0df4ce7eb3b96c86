import { createSocket } from 'node:dgram';

/**
 * First cut of the daemon: binds the conventional UDP ports and counts datagrams per
 * listener, so `npm start` shows a collector receiving. Decoding, aggregation, the store
 * and the API are wired in as they land (issue 5).
 */
const LISTENERS = [
  { name: 'ipfix', port: 4739 },
  { name: 'netflow', port: 2055 },
  { name: 'sflow', port: 6343 },
] as const;

export async function runServe(_args: string[]): Promise<number> {
  const counts = new Map<string, number>();
  const sockets = await Promise.all(
    LISTENERS.map(
      (l) =>
        new Promise<ReturnType<typeof createSocket>>((resolve, reject) => {
          const s = createSocket({ type: 'udp6', ipv6Only: false });
          s.on('message', () => counts.set(l.name, (counts.get(l.name) ?? 0) + 1));
          s.once('error', reject);
          s.bind(l.port, '::', () => {
            process.stdout.write(`listening for ${l.name} on udp/[::]:${l.port}\n`);
            resolve(s);
          });
        }),
    ),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  for (const s of sockets) s.close();
  process.stdout.write(`datagrams received: ${JSON.stringify(Object.fromEntries(counts))}\n`);
  return 0;
}
