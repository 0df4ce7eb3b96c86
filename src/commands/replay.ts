import { parseArgs } from 'node:util';
import { CLI_LOG_OPTIONS, CLI_LOG_USAGE, cliLogger } from './cli-log.js';
import { readCaptureFile } from '../../collectors/pcap.js';
import { parseHostPort, replayDatagrams } from '../../collectors/replay.js';

const USAGE = `usage: scitags-collector replay FILE.pcap [...] --to HOST:PORT [--speed N | --rate PPS] [--only-port P]
  --speed N      multiply the capture's timing by N (default 1; 0 = no pauses)
  --rate PPS     send a fixed number of datagrams per second instead
  --only-port P  replay only datagrams sent to UDP port P in the capture
${CLI_LOG_USAGE}`;

export async function runReplay(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      to: { type: 'string' },
      speed: { type: 'string', default: '1' },
      rate: { type: 'string' },
      'only-port': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' },
      ...CLI_LOG_OPTIONS,
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.to || positionals.length === 0) {
    process.stderr.write(USAGE);
    return 2;
  }
  const { host, port } = parseHostPort(values.to);
  const speed = Number(values.speed);
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  const onlyDstPort = Number(values['only-port']);
  if (!Number.isFinite(speed) || speed < 0) throw new Error(`--speed ${values.speed} must be a number >= 0`);
  if (rate !== undefined && (!Number.isFinite(rate) || rate <= 0)) throw new Error(`--rate ${values.rate} must be a number > 0`);
  if (!Number.isInteger(onlyDstPort) || onlyDstPort < 0 || onlyDstPort > 65535)
    throw new Error(`--only-port ${values['only-port']} is not a port`);
  const log = cliLogger('replay', values, process.env);
  let total = 0;
  for (const file of positionals) {
    const capture = readCaptureFile(file);
    const r = await replayDatagrams(capture.datagrams, { host, port, speed, rate, onlyDstPort });
    total += r.sent;
    log.info(`${file}: sent ${r.sent} datagrams (${r.bytes} bytes) from ${r.sockets} sockets to ${values.to}`, {
      file,
      datagrams: r.sent,
      bytes: r.bytes,
      sockets: r.sockets,
      to: values.to,
    });
  }
  process.stdout.write(`${JSON.stringify({ sent: total })}\n`);
  return 0;
}
