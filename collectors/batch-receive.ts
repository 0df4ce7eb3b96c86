/**
 * Batched UDP receive: the native recvmmsg(2) addon (collectors/native/recv.c, built into
 * build/Release/scitags_recv.node by `npm install`) with a node:dgram fallback behind one
 * interface.
 *
 * Why: with node:dgram every datagram costs a 64 KiB allocation, an ArrayBuffer, an rinfo
 * object, an address string and a JavaScript call; the addon reads up to `batchSize`
 * datagrams per system call into buffers allocated here once, and calls JavaScript once per
 * batch with the source addresses as 16 binary octets (AddressCache turns each distinct one
 * into a string once).
 *
 * A batch is valid only during the onBatch callback: the next batch overwrites the same
 * buffers. Copy what you keep (`data.slice(offsets[i], offsets[i] + lengths[i])`).
 */
import { createSocket, type Socket, type SocketOptions } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP, isIPv4 } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------
// Public interface
// ---------------------------------------------------------------------------------------

/** Datagram i is `data.subarray(offsets[i], offsets[i] + lengths[i])`, for i < count. */
export interface ReceivedBatch {
  count: number;
  data: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  /** Source ports. */
  ports: Uint16Array;
  /** Source addresses, 16 octets per message; IPv4 as IPv4-mapped ::ffff:a.b.c.d. */
  addrs: Uint8Array;
  /** 1 when the datagram was longer than its slot and was cut (recvmmsg(2) MSG_TRUNC). */
  truncated: Uint8Array;
}

export interface DatagramReceiverStats {
  datagrams: number;
  batches: number;
  truncated: number;
  /**
   * Datagrams the kernel dropped on this socket. Not collected (SO_RXQ_OVFL is off: it cost
   * 3-4 % CPU); the daemon reads the same count from /proc/net/udp.
   */
  kernelDrops: number | undefined;
}

export interface DatagramReceiver {
  readonly kind: 'recvmmsg' | 'dgram';
  /** The bound port (after start()). */
  readonly port: number;
  /** SO_RCVBUF as the kernel reports it after start() (Linux doubles the requested value). */
  readonly grantedReceiveBufferBytes: number;
  /** Binds and starts delivering; rejects (naming the port) when the socket cannot be bound. */
  start(onBatch: (batch: ReceivedBatch) => void): Promise<void>;
  /** Closes the socket; safe to call more than once, and from inside onBatch. */
  stop(): Promise<void>;
  stats(): DatagramReceiverStats;
}

export interface DatagramReceiverConfig {
  /** IP literal: '::' is dual-stack, '0.0.0.0' IPv4 only, or one local address. */
  bind: string;
  port: number;
  /** SO_RCVBUF to ask for; 0 keeps the kernel default. */
  receiveBufferBytes: number;
  /** socket(7) SO_REUSEPORT (ignored by the dgram fallback on Node < 22.12). */
  reusePort?: boolean;
  /** Messages per recvmmsg(2) call (native) or per gathered batch (dgram 'gather'). Default 64. */
  batchSize?: number;
  /** Bytes per message slot; longer datagrams are cut and flagged. Default 65,536 (any UDP payload). */
  slotBytes?: number;
}

export interface DatagramReceiverOptions {
  /** 'off' forces node:dgram; 'auto' (default) uses the addon when it loads. */
  native?: 'auto' | 'off';
  /**
   * dgram fallback: 'single' hands each datagram over as a batch of one (no copy; the
   * default, cheaper as measured by test/bench/receive.ts); 'gather' copies datagrams into
   * one batch per event-loop turn (setImmediate).
   */
  dgramDelivery?: 'single' | 'gather';
}

export const DEFAULT_BATCH_SIZE = 64;
export const DEFAULT_SLOT_BYTES = 65_536;
const MAX_BATCH_SIZE = 1024;

// ---------------------------------------------------------------------------------------
// Loading the addon
// ---------------------------------------------------------------------------------------

interface NativeStats {
  kernelDrops: number;
  datagrams: number;
  batches: number;
  truncated: number;
  errors: number;
  callbackErrors: number;
}

interface NativeReceiver {
  readonly port: number;
  readonly receiveBufferBytes: number;
  readonly family: 4 | 6;
  start(onBatch: (count: number) => void): void;
  close(): void;
  stats(): NativeStats;
}

/** The addon's exports (collectors/native/recv.c). */
interface NativeBinding {
  Receiver: new (
    address: string,
    port: number,
    receiveBufferBytes: number,
    reusePort: boolean,
    slots: number,
    slotBytes: number,
    data: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    ports: Uint16Array,
    addrs: Uint8Array,
    flags: Uint8Array,
  ) => NativeReceiver;
}

type NativeLoad = { binding: NativeBinding } | { reason: string };
let nativeLoad: NativeLoad | undefined;

/** The package root: the nearest ancestor with our package.json (works from source and dist/). */
function packageRoot(): string {
  const here = fileURLToPath(import.meta.url);
  let first: string | undefined;
  for (let dir = dirname(here); ;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      first ??= dir;
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name === 'scitags-collector') return dir;
      } catch {
        // not ours or unreadable: keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) {
      if (first !== undefined) return first;
      throw new Error(`package.json not found above ${here}`);
    }
    dir = up;
  }
}

/** Path of the built addon. */
export function nativeAddonPath(): string {
  return join(packageRoot(), 'build', 'Release', 'scitags_recv.node');
}

function loadNative(): NativeLoad {
  if (process.env['SCITAGS_NATIVE_RECV'] === 'off') return { reason: 'disabled by SCITAGS_NATIVE_RECV=off' };
  if (nativeLoad) return nativeLoad;
  if (process.platform !== 'linux') {
    nativeLoad = { reason: `recvmmsg receive is Linux-only (platform ${process.platform})` };
    return nativeLoad;
  }
  let path = 'build/Release/scitags_recv.node';
  try {
    path = nativeAddonPath();
    if (!existsSync(path)) {
      nativeLoad = { reason: `${path} was not built (npm install runs collectors/native/build.mjs)` };
    } else {
      const binding = createRequire(import.meta.url)(path) as Partial<NativeBinding>;
      nativeLoad =
        typeof binding.Receiver === 'function'
          ? { binding: binding as NativeBinding }
          : { reason: `${path} does not export Receiver (stale build?)` };
    }
  } catch (err) {
    nativeLoad = { reason: `cannot load ${path}: ${(err as Error).message}` };
  }
  return nativeLoad;
}

/** Whether the native receive path can be used, and if not why (for a start-up log line and a gauge). */
export function nativeReceiveStatus(): { available: boolean; reason?: string } {
  const l = loadNative();
  return 'binding' in l ? { available: true } : { available: false, reason: l.reason };
}

export function createDatagramReceiver(cfg: DatagramReceiverConfig, opts: DatagramReceiverOptions = {}): DatagramReceiver {
  const batchSize = cfg.batchSize ?? DEFAULT_BATCH_SIZE;
  const slotBytes = cfg.slotBytes ?? DEFAULT_SLOT_BYTES;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw new RangeError(`batchSize ${batchSize} must be an integer in [1, ${MAX_BATCH_SIZE}]`);
  }
  if (!Number.isInteger(slotBytes) || slotBytes < 1 || slotBytes > DEFAULT_SLOT_BYTES) {
    throw new RangeError(`slotBytes ${slotBytes} must be an integer in [1, ${DEFAULT_SLOT_BYTES}]`);
  }
  if (isIP(cfg.bind) === 0) throw new TypeError(`bind address ${JSON.stringify(cfg.bind)} is not an IPv4 or IPv6 address`);
  const sized = { ...cfg, batchSize, slotBytes };
  if (opts.native !== 'off') {
    const l = loadNative();
    if ('binding' in l) return new NativeDatagramReceiver(sized, l.binding);
  }
  return new DgramReceiver(sized, opts.dgramDelivery ?? 'single');
}

type SizedConfig = DatagramReceiverConfig & { batchSize: number; slotBytes: number };

/** One error for "cannot bind", naming address and port, keeping the system code. */
function bindError(cfg: DatagramReceiverConfig, cause: unknown): Error {
  const c = cause as { message?: string; code?: unknown };
  const err = new Error(`cannot receive UDP on ${cfg.bind} port ${cfg.port}: ${c.message ?? String(cause)}`, { cause });
  if (typeof c.code === 'string') (err as Error & { code: string }).code = c.code;
  return err;
}

// ---------------------------------------------------------------------------------------
// Native receiver
// ---------------------------------------------------------------------------------------

class NativeDatagramReceiver implements DatagramReceiver {
  readonly kind = 'recvmmsg';
  private native: NativeReceiver | undefined;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(
    private readonly cfg: SizedConfig,
    private readonly binding: NativeBinding,
  ) {}

  get port(): number {
    return this.native?.port ?? 0;
  }

  get grantedReceiveBufferBytes(): number {
    return this.native?.receiveBufferBytes ?? 0;
  }

  async start(onBatch: (batch: ReceivedBatch) => void): Promise<void> {
    if (this.state !== 'new') throw new Error(`receiver on port ${this.cfg.port} was already started`);
    const { batchSize: n, slotBytes } = this.cfg;
    // Allocated once and owned here; the addon keeps references and writes into them.
    const batch: ReceivedBatch = {
      count: 0,
      data: new Uint8Array(n * slotBytes),
      offsets: new Uint32Array(n),
      lengths: new Uint32Array(n),
      ports: new Uint16Array(n),
      addrs: new Uint8Array(n * 16),
      truncated: new Uint8Array(n),
    };
    let native: NativeReceiver;
    try {
      native = new this.binding.Receiver(
        this.cfg.bind,
        this.cfg.port,
        this.cfg.receiveBufferBytes,
        this.cfg.reusePort ?? false,
        n,
        slotBytes,
        batch.data,
        batch.offsets,
        batch.lengths,
        batch.ports,
        batch.addrs,
        batch.truncated,
      );
    } catch (err) {
      this.state = 'stopped';
      throw bindError(this.cfg, err);
    }
    this.native = native;
    this.state = 'running';
    native.start((count) => {
      batch.count = count;
      onBatch(batch);
    });
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.native?.close();
  }

  stats(): DatagramReceiverStats {
    const s = this.native?.stats();
    return { datagrams: s?.datagrams ?? 0, batches: s?.batches ?? 0, truncated: s?.truncated ?? 0, kernelDrops: undefined };
  }
}

// ---------------------------------------------------------------------------------------
// node:dgram fallback
// ---------------------------------------------------------------------------------------

class DgramReceiver implements DatagramReceiver {
  readonly kind = 'dgram';
  private socket: Socket | undefined;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private boundPort = 0;
  private granted = 0;
  private datagrams = 0;
  private batches = 0;
  private truncated = 0;
  /** rinfo.address -> 16 octets: the address string is parsed once per distinct exporter. */
  private readonly addrBytes = new Map<string, Uint8Array>();
  private flushGathered: (() => void) | undefined;

  constructor(
    private readonly cfg: SizedConfig,
    private readonly delivery: 'single' | 'gather',
  ) {}

  get port(): number {
    return this.boundPort;
  }

  get grantedReceiveBufferBytes(): number {
    return this.granted;
  }

  async start(onBatch: (batch: ReceivedBatch) => void): Promise<void> {
    if (this.state !== 'new') throw new Error(`receiver on port ${this.cfg.port} was already started`);
    const options: SocketOptions & { reusePort?: boolean } = {
      type: isIPv4(this.cfg.bind) ? 'udp4' : 'udp6',
      ipv6Only: false,
      ...(this.cfg.receiveBufferBytes > 0 ? { recvBufferSize: this.cfg.receiveBufferBytes } : {}),
      // Node 22.12+ knows reusePort; Node 20 ignores the unknown option.
      ...(this.cfg.reusePort ? { reusePort: true } : {}),
    };
    const socket = createSocket(options);
    socket.on('message', this.delivery === 'single' ? this.single(onBatch) : this.gather(onBatch));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(this.cfg.port, this.cfg.bind, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.state = 'stopped';
      socket.close();
      throw bindError(this.cfg, err);
    }
    // After binding, socket errors (e.g. ICMP reports) must not crash the process.
    socket.on('error', () => {});
    this.boundPort = socket.address().port;
    this.granted = socket.getRecvBufferSize();
    this.socket = socket;
    this.state = 'running';
  }

  /** Copies the 16-octet form of `address` into addrs at message index i. */
  private putAddress(addrs: Uint8Array, i: number, address: string): void {
    let b = this.addrBytes.get(address);
    if (b === undefined) {
      b = new Uint8Array(16);
      parseAddress16(address, b, 0);
      // Bounded: a flood of spoofed sources cannot grow it without limit.
      if (this.addrBytes.size >= 4096) this.addrBytes.clear();
      this.addrBytes.set(address, b);
    }
    addrs.set(b, i * 16);
  }

  /** Each datagram is a batch of one over dgram's own buffer (no copy). */
  private single(onBatch: (batch: ReceivedBatch) => void): (msg: Buffer, rinfo: { address: string; port: number }) => void {
    const batch: ReceivedBatch = {
      count: 1,
      data: new Uint8Array(0),
      offsets: new Uint32Array(1),
      lengths: new Uint32Array(1),
      ports: new Uint16Array(1),
      addrs: new Uint8Array(16),
      truncated: new Uint8Array(1),
    };
    return (msg, rinfo) => {
      this.datagrams++;
      this.batches++;
      batch.data = msg;
      batch.lengths[0] = msg.length;
      batch.ports[0] = rinfo.port;
      this.putAddress(batch.addrs, 0, rinfo.address);
      onBatch(batch);
    };
  }

  /** Datagrams are copied into one buffer and delivered once per event-loop turn. */
  private gather(onBatch: (batch: ReceivedBatch) => void): (msg: Buffer, rinfo: { address: string; port: number }) => void {
    const n = this.cfg.batchSize;
    const batch: ReceivedBatch = {
      count: 0,
      data: new Uint8Array(n * this.cfg.slotBytes),
      offsets: new Uint32Array(n),
      lengths: new Uint32Array(n),
      ports: new Uint16Array(n),
      addrs: new Uint8Array(n * 16),
      truncated: new Uint8Array(n),
    };
    let used = 0;
    let scheduled: NodeJS.Immediate | undefined;
    const flush = (): void => {
      if (scheduled) clearImmediate(scheduled);
      scheduled = undefined;
      if (batch.count === 0) return;
      this.batches++;
      try {
        onBatch(batch);
      } finally {
        batch.count = 0;
        used = 0;
      }
    };
    this.flushGathered = flush;
    return (msg, rinfo) => {
      if (batch.count === n || used + msg.length > batch.data.length) flush();
      const i = batch.count++;
      this.datagrams++;
      // Only with a small slotBytes can a datagram exceed the whole buffer: cut and flag it.
      const len = Math.min(msg.length, batch.data.length);
      if (len < msg.length) this.truncated++;
      batch.data.set(len < msg.length ? msg.subarray(0, len) : msg, used);
      batch.offsets[i] = used;
      batch.lengths[i] = len;
      batch.truncated[i] = len < msg.length ? 1 : 0;
      batch.ports[i] = rinfo.port;
      this.putAddress(batch.addrs, i, rinfo.address);
      used += len;
      scheduled ??= setImmediate(flush);
    };
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    const s = this.socket;
    this.socket = undefined;
    if (!s) return;
    // Gathered datagrams were received: deliver them rather than lose them.
    const flush = this.flushGathered;
    this.flushGathered = undefined;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    flush?.();
  }

  stats(): DatagramReceiverStats {
    return { datagrams: this.datagrams, batches: this.batches, truncated: this.truncated, kernelDrops: undefined };
  }
}

// ---------------------------------------------------------------------------------------
// Addresses: 16 octets <-> text
// ---------------------------------------------------------------------------------------

function word(a: Uint8Array, o: number): number {
  return ((a[o]! << 24) | (a[o + 1]! << 16) | (a[o + 2]! << 8) | a[o + 3]!) >>> 0;
}

function dotted(v4: number): string {
  return `${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`;
}

/**
 * Text of the 16 octets at `a[o..o+16)`: IPv4-mapped addresses (::ffff:a.b.c.d) fold to
 * dotted IPv4, as collectors/allowlist.ts normalizeAddress does; everything else as node:net
 * prints it (libuv's inet_ntop6: RFC 5952 zero compression of the first longest run of two
 * or more zero groups, lowercase hex, and "::a.b.c.d" for IPv4-compatible addresses).
 */
export function formatAddress16(a: Uint8Array, o = 0): string {
  const w0 = word(a, o);
  const w1 = word(a, o + 4);
  const w2 = word(a, o + 8);
  const w3 = word(a, o + 12);
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) return dotted(w3);
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    // IPv4-compatible ::a.b.c.d (libuv keeps BIND's rule; ::ffff:0:0/96 was handled above).
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) {
      out += dotted(w3);
      return out;
    }
    out += g[i]!.toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) out += ':';
  return out;
}

/**
 * Writes the 16-octet form of an IPv4 or IPv6 literal (IPv4 as ::ffff:a.b.c.d) into
 * out[o..o+16). A "%zone" suffix is dropped. Returns false (leaving zeros) for non-literals.
 */
export function parseAddress16(text: string, out: Uint8Array, o = 0): boolean {
  out.fill(0, o, o + 16);
  if (isIPv4(text)) {
    out[o + 10] = 0xff;
    out[o + 11] = 0xff;
    writeDotted(text, out, o + 12);
    return true;
  }
  const pct = text.indexOf('%');
  const addr = pct >= 0 ? text.slice(0, pct) : text;
  if (isIP(addr) !== 6) return false;
  const groups: number[] = [];
  const parseSide = (side: string): number[] => {
    if (side === '') return [];
    const parts = side.split(':');
    const res: number[] = [];
    for (const p of parts) {
      if (p.includes('.')) {
        const v4 = new Uint8Array(4);
        writeDotted(p, v4, 0);
        res.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        res.push(parseInt(p, 16));
      }
    }
    return res;
  };
  const dbl = addr.indexOf('::');
  if (dbl < 0) {
    groups.push(...parseSide(addr));
  } else {
    const head = parseSide(addr.slice(0, dbl));
    const tail = parseSide(addr.slice(dbl + 2));
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  }
  for (let i = 0; i < 8; i++) {
    const v = groups[i] ?? 0;
    out[o + 2 * i] = v >>> 8;
    out[o + 2 * i + 1] = v & 255;
  }
  return true;
}

function writeDotted(text: string, out: Uint8Array, o: number): void {
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) out[o + i] = Number(parts[i]);
}

/**
 * Bounded cache from 16 binary octets to the normalized address string, so a datagram's
 * source address costs four word reads and a hash probe, not a string formatting. The key is
 * the four 32-bit words in a flat Uint32Array (no string or bigint is built on a hit).
 * Open addressing with at most PROBES probes; when they are all taken, the first is
 * overwritten, so memory stays fixed however many sources appear (entries are never removed,
 * so a probe sequence never has holes).
 */
export class AddressCache {
  private static readonly PROBES = 8;
  private readonly keys: Uint32Array;
  private readonly values: (string | undefined)[];
  private readonly mask: number;
  /** Lookups answered from the cache / formatted afresh. */
  hits = 0;
  misses = 0;

  /** `capacity` is rounded up to a power of two. */
  constructor(capacity = 4096) {
    let size = 16;
    while (size < capacity) size *= 2;
    this.mask = size - 1;
    this.keys = new Uint32Array(size * 4);
    this.values = new Array<string | undefined>(size).fill(undefined);
  }

  /** The string for message `index` of a batch's `addrs` (16 octets per message). */
  get(addrs: Uint8Array, index: number): string {
    const o = index * 16;
    const w0 = word(addrs, o);
    const w1 = word(addrs, o + 4);
    const w2 = word(addrs, o + 8);
    const w3 = word(addrs, o + 12);
    let h = Math.imul(w3, 0x9e3779b1) ^ Math.imul(w2 ^ (w3 >>> 16), 0x85ebca6b) ^ Math.imul(w1, 0xc2b2ae35) ^ Math.imul(w0, 0x27d4eb2f);
    h ^= h >>> 15;
    const keys = this.keys;
    const start = h & this.mask;
    for (let p = 0; p < AddressCache.PROBES; p++) {
      const slot = (start + p) & this.mask;
      const v = this.values[slot];
      if (v === undefined) return this.put(slot, w0, w1, w2, w3, addrs, o);
      const k = slot * 4;
      if (keys[k] === w0 && keys[k + 1] === w1 && keys[k + 2] === w2 && keys[k + 3] === w3) {
        this.hits++;
        return v;
      }
    }
    return this.put(start, w0, w1, w2, w3, addrs, o);
  }

  private put(slot: number, w0: number, w1: number, w2: number, w3: number, addrs: Uint8Array, o: number): string {
    this.misses++;
    const s = formatAddress16(addrs, o);
    const k = slot * 4;
    this.keys[k] = w0;
    this.keys[k + 1] = w1;
    this.keys[k + 2] = w2;
    this.keys[k + 3] = w3;
    this.values[slot] = s;
    return s;
  }
}
