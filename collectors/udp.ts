import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import type { ExporterAllowList } from './allowlist.js';
import { normalizeAddress } from './allowlist.js';
import type { ReceivedDatagram } from './queue.js';

export type ListenerProtocol = 'ipfix' | 'netflow' | 'sflow';

export interface UdpListenerConfig {
  protocol: ListenerProtocol;
  port: number;
  /** '::' binds dual-stack, '0.0.0.0' IPv4 only, or one address. */
  bind: string;
  /** SO_RCVBUF in bytes; 0 keeps the kernel default. Bursts from many exporters need MBs. */
  receiveBufferBytes: number;
}

export interface UdpListenerStats {
  datagrams: number;
  bytes: number;
  deniedByAllowList: number;
  queueDrops: number;
}

/**
 * One UDP socket. The message handler does the minimum: timestamp, tag with exporter
 * address/port and local port, allow-list check, push into the bounded queue. Decoding
 * happens elsewhere, so a slow decoder shows up as counted queue drops, never as a
 * blocked socket.
 */
export class UdpListener {
  private socket: Socket | undefined;
  readonly stats: UdpListenerStats = { datagrams: 0, bytes: 0, deniedByAllowList: 0, queueDrops: 0 };
  private boundPort = 0;

  constructor(
    readonly config: UdpListenerConfig,
    /** Hands the datagram to the decode stage; false when its queue budget is exhausted. */
    private readonly submit: (d: ReceivedDatagram) => boolean,
    private readonly allowList: ExporterAllowList,
    private readonly now: () => number = Date.now,
  ) {}

  /** The port actually bound (the configured one; config port 0 means no listener is created). */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    const ipv6 = !isIPv4(this.config.bind);
    const socket = createSocket({
      type: ipv6 ? 'udp6' : 'udp4',
      ipv6Only: false,
      ...(this.config.receiveBufferBytes > 0 ? { recvBufferSize: this.config.receiveBufferBytes } : {}),
    });
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.config.port, this.config.bind, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // After binding, a socket error must not crash the process; it is logged by the owner.
    socket.on('error', () => {});
    this.boundPort = socket.address().port;
    this.socket = socket;
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    const srcAddr = normalizeAddress(address);
    this.stats.datagrams++;
    this.stats.bytes += msg.length;
    if (!this.allowList.allows(srcAddr)) {
      this.stats.deniedByAllowList++;
      return;
    }
    if (!this.submit({ payload: msg, srcAddr, srcPort: port, localPort: this.boundPort, receivedMs: this.now() })) this.stats.queueDrops++;
  }

  /** Local address and port, and the socket's inode lookup key for /proc/net/udp. */
  address(): { address: string; port: number } | undefined {
    return this.socket?.address();
  }

  async stop(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
