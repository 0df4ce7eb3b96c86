/**
 * Space-Saving (Metwally, Agrawal, El Abbadi, "Efficient computation of frequent and top-k
 * elements in data streams", ICDT 2005), weighted: a fixed number `capacity` of counters
 * keyed by a uint32 (here an IPv4 address), each with its bytes (the weight), packets and
 * over-estimation error.
 *
 * A key already counted adds its weight. A new key takes a free counter while there is one;
 * once every counter is taken it replaces the key with the smallest bytes (min), starting
 * from min + weight with error = min. The counters sit in a binary min-heap by bytes (typed
 * arrays, no allocation per update once full) with a Map key -> slot: O(log k) per update.
 *
 * Guarantees, for every listed key: bytes - errorBytes <= true bytes <= bytes. A key not
 * listed has true bytes <= the smallest listed bytes (only once the sketch is full; before,
 * every count is exact and errorBytes is 0). Any key whose true bytes exceed min bytes (at
 * most total / capacity in a single stream) is listed. `packets` counts what the key added
 * since it took its counter: a lower bound (exact while errorBytes is 0).
 *
 * Merging (worker partials into the main thread's sketch, `merge`): when the other sketch
 * was full, a key it does not list may have had up to its min there, so every key listed
 * here and absent there gains that min in bytes and error; then each of its entries is
 * added as one weighted update carrying its own error (the Space-Saving replacement rule
 * when this sketch is full). Counts only grow, so the minimum never decreases and both
 * bounds above keep holding after any sequence of merges; with two sketches that were never
 * full the result is exact.
 */

/** One counter: the key (uint32), bytes (upper bound), packets, errorBytes (bytes - errorBytes is a lower bound). */
export interface SketchEntry {
  key: number;
  bytes: number;
  packets: number;
  errorBytes: number;
}

/** Numbers per entry in the packed form (key, bytes, packets, errorBytes). */
export const PACKED_FIELDS = 4;

export class SpaceSaving {
  readonly capacity: number;
  private readonly keys: Uint32Array;
  private readonly bytes: Float64Array;
  private readonly packets: Float64Array;
  private readonly errors: Float64Array;
  /** heap[i] = slot; pos[slot] = i. */
  private readonly heap: Int32Array;
  private readonly pos: Int32Array;
  private readonly index = new Map<number, number>();
  private n = 0;
  /** Sum of every weight added (bytes of the whole stream, merges included). */
  total = 0;

  constructor(capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new Error(`Space-Saving capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.keys = new Uint32Array(capacity);
    this.bytes = new Float64Array(capacity);
    this.packets = new Float64Array(capacity);
    this.errors = new Float64Array(capacity);
    this.heap = new Int32Array(capacity);
    this.pos = new Int32Array(capacity);
  }

  get size(): number {
    return this.n;
  }

  /** Every counter taken: later new keys replace the minimum (counts become estimates). */
  get full(): boolean {
    return this.n === this.capacity;
  }

  /** Smallest listed bytes (0 while empty). */
  get min(): number {
    return this.n === 0 ? 0 : this.bytes[this.heap[0]!]!;
  }

  /** Adds `weight` bytes and `packets` to `key` (error: an over-estimate the weight already carries, from a merge). */
  add(key: number, weight: number, packets: number, error = 0): void {
    this.total += weight;
    let slot = this.index.get(key);
    if (slot !== undefined) {
      this.bytes[slot]! += weight;
      this.packets[slot]! += packets;
      this.errors[slot]! += error;
      this.down(this.pos[slot]!);
      return;
    }
    if (this.n < this.capacity) {
      slot = this.n++;
      this.keys[slot] = key;
      this.bytes[slot] = weight;
      this.packets[slot] = packets;
      this.errors[slot] = error;
      this.heap[slot] = slot;
      this.pos[slot] = slot;
      this.index.set(key, slot);
      this.up(slot);
      return;
    }
    slot = this.heap[0]!;
    const min = this.bytes[slot]!;
    this.index.delete(this.keys[slot]!);
    this.keys[slot] = key;
    this.bytes[slot] = min + weight;
    this.packets[slot] = packets;
    this.errors[slot] = min + error;
    this.index.set(key, slot);
    this.down(0);
  }

  /** Entries largest bytes first (ties by key). */
  entries(): SketchEntry[] {
    const out: SketchEntry[] = [];
    for (let s = 0; s < this.n; s++) {
      out.push({ key: this.keys[s]!, bytes: this.bytes[s]!, packets: this.packets[s]!, errorBytes: this.errors[s]! });
    }
    return out.sort((a, b) => b.bytes - a.bytes || a.key - b.key);
  }

  /** The entries as one Float64Array (PACKED_FIELDS numbers each), for a message between threads. */
  pack(): Float64Array {
    const out = new Float64Array(this.n * PACKED_FIELDS);
    for (let s = 0; s < this.n; s++) {
      const o = s * PACKED_FIELDS;
      out[o] = this.keys[s]!;
      out[o + 1] = this.bytes[s]!;
      out[o + 2] = this.packets[s]!;
      out[o + 3] = this.errors[s]!;
    }
    return out;
  }

  /**
   * Adds another sketch's entries (packed, see pack()). `otherFull`: that sketch had every
   * counter taken, so keys it does not list may have had up to its minimum there.
   */
  merge(packed: Float64Array, otherFull: boolean): void {
    const count = Math.floor(packed.length / PACKED_FIELDS);
    if (otherFull && count > 0 && this.n > 0) {
      let otherMin = Infinity;
      const listed = new Set<number>();
      for (let i = 0; i < count; i++) {
        otherMin = Math.min(otherMin, packed[i * PACKED_FIELDS + 1]!);
        listed.add(packed[i * PACKED_FIELDS]!);
      }
      if (otherMin > 0) {
        for (let s = 0; s < this.n; s++) {
          if (listed.has(this.keys[s]!)) continue;
          this.bytes[s]! += otherMin;
          this.errors[s]! += otherMin;
        }
        for (let i = (this.n >>> 1) - 1; i >= 0; i--) this.down(i);
      }
    }
    for (let i = 0; i < count; i++) {
      const o = i * PACKED_FIELDS;
      this.add(packed[o]! >>> 0, packed[o + 1]!, packed[o + 2]!, packed[o + 3]!);
    }
  }

  /** Empties the sketch (the arrays are kept). */
  clear(): void {
    this.n = 0;
    this.total = 0;
    this.index.clear();
  }

  private less(i: number, j: number): boolean {
    return this.bytes[this.heap[i]!]! < this.bytes[this.heap[j]!]!;
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i]!;
    const b = this.heap[j]!;
    this.heap[i] = b;
    this.heap[j] = a;
    this.pos[b] = i;
    this.pos[a] = j;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >>> 1;
      if (!this.less(i, p)) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.n) return;
      const r = l + 1;
      const c = r < this.n && this.less(r, l) ? r : l;
      if (!this.less(c, i)) return;
      this.swap(i, c);
      i = c;
    }
  }
}

/** Dotted-quad text of a uint32 IPv4 address. */
export function ipv4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

/** The uint32 of a dotted-quad IPv4 address, or undefined. */
export function ipv4Number(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}
