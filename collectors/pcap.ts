import { readFileSync } from 'node:fs';
import { DecodeError } from '../decoders/errors.js';
import { ipv4String, ipv6String } from '../decoders/packet/addr.js';

/**
 * Reads UDP datagrams out of capture files, so `ingest`, `decode` and `replay` can treat a
 * capture exactly like live traffic: payload, source address and port, capture time.
 *
 * Formats: classic pcap (both byte orders, micro- and nanosecond timestamps) and pcapng
 * (SHB / IDB / EPB / SPB / obsolete PB blocks; other blocks skipped by length), because
 * tshark and dumpcap write pcapng by default.
 * Link types (tcpdump.org/linktypes.html): EN10MB 1, RAW 101 (and 12/14 on some BSDs),
 * IPV4 228, IPV6 229, LINUX_SLL 113, LINUX_SLL2 276, NULL/LOOP 0/108.
 */
export interface CapturedDatagram {
  /** 1-based frame number in the file, as tshark and Wireshark number them. */
  frame: number;
  /** Capture time in ms since the Unix epoch (fractional part kept). */
  timeMs: number;
  srcAddr: string;
  srcPort: number;
  dstAddr: string;
  dstPort: number;
  payload: Uint8Array;
}

/** A frame that is not a UDP datagram we can use, with the reason (for `ingest` diagnostics). */
export interface SkippedFrame {
  frame: number;
  reason: string;
}

export interface CaptureContents {
  datagrams: CapturedDatagram[];
  skipped: SkippedFrame[];
}

const LINKTYPE_NULL = 0;
const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW_BSD1 = 12;
const LINKTYPE_RAW_BSD2 = 14;
const LINKTYPE_RAW = 101;
const LINKTYPE_LOOP = 108;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_IPV4 = 228;
const LINKTYPE_IPV6 = 229;
const LINKTYPE_LINUX_SLL2 = 276;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = [0x8100, 0x88a8, 0x9100];

const IPPROTO_UDP = 17;

/** Reads a whole capture file. Errors name the file and, where it applies, the frame. */
export function readCaptureFile(path: string): CaptureContents {
  const bytes = new Uint8Array(readFileSync(path));
  try {
    return parseCapture(bytes);
  } catch (err) {
    if (err instanceof DecodeError) {
      throw new DecodeError(err.code, `${path}: ${err.message}`);
    }
    throw err;
  }
}

export function parseCapture(bytes: Uint8Array): CaptureContents {
  if (bytes.length < 4) throw new DecodeError('pcap-truncated', `file is ${bytes.length} bytes, too short for any capture header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicBE = view.getUint32(0, false);
  if (magicBE === 0x0a0d0d0a) return parsePcapng(bytes, view);
  return parsePcap(bytes, view);
}

function parsePcap(bytes: Uint8Array, view: DataView): CaptureContents {
  const magic = view.getUint32(0, true);
  let little: boolean;
  let nanos: boolean;
  if (magic === 0xa1b2c3d4) [little, nanos] = [true, false];
  else if (magic === 0xa1b23c4d) [little, nanos] = [true, true];
  else if (magic === 0xd4c3b2a1) [little, nanos] = [false, false];
  else if (magic === 0x4d3cb2a1) [little, nanos] = [false, true];
  else throw new DecodeError('pcap-bad-magic', `magic 0x${view.getUint32(0, false).toString(16)} is neither pcap nor pcapng`);
  if (bytes.length < 24) throw new DecodeError('pcap-truncated', 'pcap global header is cut short');
  const linkType = view.getUint32(20, little) & 0x0fffffff; // upper bits carry FCS info (pcap spec, LinkType and additional information)
  const out: CaptureContents = { datagrams: [], skipped: [] };
  let off = 24;
  let frame = 0;
  while (off < bytes.length) {
    frame++;
    if (off + 16 > bytes.length) throw new DecodeError('pcap-truncated', `frame ${frame}: record header cut short`, off);
    const sec = view.getUint32(off, little);
    const frac = view.getUint32(off + 4, little);
    const capLen = view.getUint32(off + 8, little);
    if (off + 16 + capLen > bytes.length) {
      throw new DecodeError('pcap-truncated', `frame ${frame}: captured length ${capLen} runs past the end of the file`, off);
    }
    const timeMs = sec * 1000 + (nanos ? frac / 1e6 : frac / 1e3);
    handleFrame(bytes.subarray(off + 16, off + 16 + capLen), linkType, frame, timeMs, out);
    off += 16 + capLen;
  }
  return out;
}

function parsePcapng(bytes: Uint8Array, view: DataView): CaptureContents {
  const out: CaptureContents = { datagrams: [], skipped: [] };
  let little = true;
  let interfaces: { linkType: number; tsDivisor: number }[] = [];
  let off = 0;
  let frame = 0;
  while (off < bytes.length) {
    if (off + 12 > bytes.length) throw new DecodeError('pcap-truncated', `block header cut short after frame ${frame}`, off);
    const typeBE = view.getUint32(off, false);
    if (typeBE === 0x0a0d0d0a) {
      // Section Header Block: the byte-order magic decides the order of this section.
      const bom = view.getUint32(off + 8, true);
      if (bom === 0x1a2b3c4d) little = true;
      else if (bom === 0x4d3c2b1a) little = false;
      else throw new DecodeError('pcap-bad-magic', `pcapng byte-order magic 0x${bom.toString(16)} is invalid`, off);
      interfaces = [];
    }
    const type = view.getUint32(off, little);
    const len = view.getUint32(off + 4, little);
    if (len < 12 || len % 4 !== 0 || off + len > bytes.length) {
      throw new DecodeError('pcap-truncated', `block of type ${type} with length ${len} is invalid or cut short`, off);
    }
    const body = off + 8;
    const bodyEnd = off + len - 4;
    if (type === 1) {
      // Interface Description Block: link type, then options; if_tsresol (9) sets the clock.
      if (bodyEnd - body < 8) throw new DecodeError('pcap-truncated', 'interface description block too short', off);
      const linkType = view.getUint16(body, little);
      let tsDivisor = 1e6;
      let o = body + 8;
      while (o + 4 <= bodyEnd) {
        const code = view.getUint16(o, little);
        const olen = view.getUint16(o + 2, little);
        if (code === 0) break;
        if (code === 9 && olen >= 1 && o + 5 <= bodyEnd) {
          const r = bytes[o + 4]!;
          tsDivisor = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
        }
        o += 4 + ((olen + 3) & ~3);
      }
      interfaces.push({ linkType, tsDivisor });
    } else if (type === 6 || type === 2 || type === 3) {
      frame++;
      let ifIndex = 0;
      let capLen: number;
      let dataOff: number;
      let timeMs = 0;
      if (type === 3) {
        // Simple Packet Block: no interface id (interface 0), no timestamp.
        capLen = Math.min(view.getUint32(body, little), bodyEnd - body - 4);
        dataOff = body + 4;
      } else {
        if (bodyEnd - body < 20) throw new DecodeError('pcap-truncated', `frame ${frame}: packet block too short`, off);
        ifIndex = type === 6 ? view.getUint32(body, little) : view.getUint16(body, little);
        const iface = interfaces[ifIndex];
        const tsHigh = view.getUint32(body + 4, little);
        const tsLow = view.getUint32(body + 8, little);
        capLen = view.getUint32(body + 12, little);
        dataOff = body + 20;
        const divisor = iface?.tsDivisor ?? 1e6;
        timeMs = ((tsHigh * 4294967296 + tsLow) / divisor) * 1000;
      }
      if (dataOff + capLen > bodyEnd)
        throw new DecodeError('pcap-truncated', `frame ${frame}: captured length ${capLen} runs past its block`, off);
      const iface = interfaces[ifIndex];
      if (!iface) {
        out.skipped.push({ frame, reason: `interface ${ifIndex} was never described` });
      } else {
        handleFrame(bytes.subarray(dataOff, dataOff + capLen), iface.linkType, frame, timeMs, out);
      }
    }
    off += len;
  }
  return out;
}

/** Extracts the UDP datagram of one captured frame, or records why it was skipped. */
function handleFrame(frameBytes: Uint8Array, linkType: number, frame: number, timeMs: number, out: CaptureContents): void {
  const reason = extractUdp(frameBytes, linkType, frame, timeMs, out);
  if (reason !== null) out.skipped.push({ frame, reason });
}

function extractUdp(b: Uint8Array, linkType: number, frame: number, timeMs: number, out: CaptureContents): string | null {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let off: number;
  let etherType: number | undefined;
  switch (linkType) {
    case LINKTYPE_ETHERNET: {
      if (b.length < 14) return 'Ethernet header cut short';
      etherType = view.getUint16(12);
      off = 14;
      while (ETHERTYPE_VLAN.includes(etherType)) {
        if (off + 4 > b.length) return 'VLAN tag cut short';
        etherType = view.getUint16(off + 2);
        off += 4;
      }
      break;
    }
    case LINKTYPE_LINUX_SLL:
      if (b.length < 16) return 'Linux cooked header cut short';
      etherType = view.getUint16(14);
      off = 16;
      break;
    case LINKTYPE_LINUX_SLL2:
      if (b.length < 20) return 'Linux cooked v2 header cut short';
      etherType = view.getUint16(0);
      off = 20;
      break;
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP: {
      // 4-octet address family in host (NULL) or network (LOOP) order; 2 = IPv4, 24/28/30 = IPv6.
      if (b.length < 4) return 'loopback header cut short';
      const fam = linkType === LINKTYPE_LOOP ? view.getUint32(0) : Math.min(view.getUint32(0, true), view.getUint32(0));
      off = 4;
      etherType = fam === 2 ? ETHERTYPE_IPV4 : [24, 28, 30].includes(fam) ? ETHERTYPE_IPV6 : undefined;
      break;
    }
    case LINKTYPE_RAW:
    case LINKTYPE_RAW_BSD1:
    case LINKTYPE_RAW_BSD2:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6:
      off = 0;
      etherType = undefined; // decided by the version nibble
      break;
    default:
      throw new DecodeError(
        'pcap-unsupported-linktype',
        `link type ${linkType} is not supported (Ethernet, Linux cooked, raw IP and loopback are)`,
      );
  }
  if (off >= b.length) return 'no IP header';
  const version = b[off]! >> 4;
  if (etherType === undefined) etherType = version === 4 ? ETHERTYPE_IPV4 : version === 6 ? ETHERTYPE_IPV6 : 0;
  let src: string;
  let dst: string;
  let udp: number;
  let udpEnd: number;
  if (etherType === ETHERTYPE_IPV4 && version === 4) {
    if (off + 20 > b.length) return 'IPv4 header cut short';
    const ihl = (b[off]! & 0x0f) * 4;
    const total = view.getUint16(off + 2);
    const fragOff = view.getUint16(off + 6) & 0x3fff; // MF bit + offset
    if (b[off + 9] !== IPPROTO_UDP) return `IPv4 protocol ${b[off + 9]} is not UDP`;
    if (fragOff !== 0) return 'IPv4 fragment (reassembly is not supported)';
    if (ihl < 20 || off + ihl + 8 > b.length) return 'IPv4/UDP header cut short';
    src = ipv4String(b, off + 12);
    dst = ipv4String(b, off + 16);
    udp = off + ihl;
    udpEnd = Math.min(off + total, b.length);
  } else if (etherType === ETHERTYPE_IPV6 && version === 6) {
    if (off + 40 > b.length) return 'IPv6 header cut short';
    const next = b[off + 6]!;
    if (next !== IPPROTO_UDP) return `IPv6 next header ${next} is not UDP`;
    if (off + 48 > b.length) return 'IPv6/UDP header cut short';
    src = ipv6String(b, off + 8);
    dst = ipv6String(b, off + 24);
    udp = off + 40;
    udpEnd = Math.min(off + 40 + view.getUint16(off + 4), b.length);
  } else {
    return `ethertype 0x${etherType.toString(16)} is not IPv4 or IPv6`;
  }
  const udpLen = view.getUint16(udp + 4);
  if (udpLen < 8) return `UDP length ${udpLen} is shorter than its header`;
  const payloadEnd = Math.min(udp + udpLen, udpEnd);
  if (udp + udpLen > b.length)
    return `UDP datagram cut short by the capture (snaplen): ${udpLen} bytes declared, ${b.length - udp} captured`;
  out.datagrams.push({
    frame,
    timeMs,
    srcAddr: src,
    srcPort: view.getUint16(udp),
    dstAddr: dst,
    dstPort: view.getUint16(udp + 2),
    payload: b.subarray(udp + 8, payloadEnd),
  });
  return null;
}
