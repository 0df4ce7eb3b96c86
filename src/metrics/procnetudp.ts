import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { ipv6String } from '../../decoders/packet/addr.js';

/**
 * Kernel UDP socket statistics from /proc/net/udp and /proc/net/udp6 (Linux). The `drops`
 * column counts datagrams the kernel discarded for a socket (receive buffer full), which is
 * loss the collector never sees; rx_queue is the bytes waiting in the receive buffer.
 *
 * Line format (one header line, then one line per socket):
 *   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
 *   9146: 0100007F:5046 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 13526 2 000000001d29066f 0
 * Addresses are the raw in-kernel 32-bit words printed in hex in host byte order (so
 * 127.0.0.1 reads 0100007F on little-endian machines); ports and queues are hex.
 */
export interface UdpSocketStats {
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** TCP-style state number (7 = unconnected UDP socket). */
  state: number;
  txQueueBytes: number;
  rxQueueBytes: number;
  uid: number;
  inode: number;
  drops: number;
}

function wordBytes(hex8: string, littleEndian: boolean): number[] {
  const b = [0, 2, 4, 6].map((i) => parseInt(hex8.slice(i, i + 2), 16));
  return littleEndian ? b.reverse() : b;
}

/** Decodes one /proc address ("0100007F" or 32 hex digits) to text; undefined if malformed. */
export function decodeProcAddress(hex: string, littleEndian: boolean): { address: string; family: 4 | 6 } | undefined {
  if (!/^[0-9A-Fa-f]+$/.test(hex)) return undefined;
  if (hex.length === 8) return { address: wordBytes(hex, littleEndian).join('.'), family: 4 };
  if (hex.length !== 32) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < 32; i += 8) bytes.push(...wordBytes(hex.slice(i, i + 8), littleEndian));
  return { address: ipv6String(Uint8Array.from(bytes), 0), family: 6 };
}

/**
 * Parses the text of /proc/net/udp or /proc/net/udp6. Pure: the header and malformed lines
 * are skipped. `littleEndian` is the byte order of the machine that produced the text.
 */
export function parseProcNetUdp(text: string, littleEndian: boolean = endianness() === 'LE'): UdpSocketStats[] {
  const out: UdpSocketStats[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13 || !/^\d+:$/.test(f[0]!)) continue;
    const [local, remote, st, queues, , , uid, , inode, , , drops] = f.slice(1) as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const [lAddr, lPort] = local.split(':');
    const [rAddr, rPort] = remote.split(':');
    const [tx, rx] = queues.split(':');
    const la = lAddr === undefined ? undefined : decodeProcAddress(lAddr, littleEndian);
    const ra = rAddr === undefined ? undefined : decodeProcAddress(rAddr, littleEndian);
    if (!la || !ra || lPort === undefined || rPort === undefined || tx === undefined || rx === undefined) continue;
    const nums = [lPort, rPort, st, tx, rx].map((h) => parseInt(h, 16));
    const decs = [uid, inode, drops].map((d) => (/^\d+$/.test(d) ? Number(d) : NaN));
    if ([...nums, ...decs].some((n) => Number.isNaN(n))) continue;
    out.push({
      family: la.family,
      localAddress: la.address,
      localPort: nums[0]!,
      remoteAddress: ra.address,
      remotePort: nums[1]!,
      state: nums[2]!,
      txQueueBytes: nums[3]!,
      rxQueueBytes: nums[4]!,
      uid: decs[0]!,
      inode: decs[1]!,
      drops: decs[2]!,
    });
  }
  return out;
}

/** Reads and parses both files; a missing file (not Linux, no IPv6) contributes nothing. */
export function readKernelUdpSockets(readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): UdpSocketStats[] {
  const out: UdpSocketStats[] = [];
  for (const path of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFile(path);
    } catch {
      continue;
    }
    out.push(...parseProcNetUdp(text));
  }
  return out;
}

export interface KernelUdpListenerStats {
  listener: string;
  port: number;
  drops: number;
  rxQueueBytes: number;
}

/**
 * Sums drops and queued bytes per listener from the sockets bound to its local port
 * (several sockets may share a port with SO_REUSEPORT or separate binds).
 */
export function kernelUdpStatsForListeners(
  listeners: readonly { name: string; port: number }[],
  sockets: readonly UdpSocketStats[],
): KernelUdpListenerStats[] {
  return listeners.map((l) => {
    let drops = 0;
    let rxQueueBytes = 0;
    for (const s of sockets) {
      if (s.localPort === l.port && s.remotePort === 0) {
        drops += s.drops;
        rxQueueBytes += s.rxQueueBytes;
      }
    }
    return { listener: l.name, port: l.port, drops, rxQueueBytes };
  });
}
