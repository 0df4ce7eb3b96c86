/**
 * A bounded FIFO between the socket handlers and the decoders. The receive path only
 * pushes; when the queue is full the datagram is dropped and counted against its exporter,
 * so a burst never blocks the socket or grows memory without bound.
 */
export interface ReceivedDatagram {
  payload: Uint8Array;
  /** Exporter address (IPv4-mapped IPv6 already folded to IPv4) and source port. */
  srcAddr: string;
  srcPort: number;
  /** Local port the datagram arrived on (tells the listener / protocol). */
  localPort: number;
  receivedMs: number;
}

export class BoundedQueue<T extends { srcAddr: string }> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private size = 0;
  /** Datagrams dropped because the queue was full, per exporter address. */
  readonly dropsByExporter = new Map<string, number>();
  dropped = 0;
  /** Cap on distinct exporters tracked in dropsByExporter; the rest count under 'other'. */
  private static readonly MAX_DROP_KEYS = 1024;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity ${capacity} must be a positive integer`);
    this.items = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Returns false (and counts the drop) when the queue is full. */
  push(item: T): boolean {
    if (this.size === this.capacity) {
      this.dropped++;
      const key = this.dropsByExporter.has(item.srcAddr) || this.dropsByExporter.size < BoundedQueue.MAX_DROP_KEYS ? item.srcAddr : 'other';
      this.dropsByExporter.set(key, (this.dropsByExporter.get(key) ?? 0) + 1);
      return false;
    }
    this.items[(this.head + this.size) % this.capacity] = item;
    this.size++;
    return true;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return item;
  }
}
