import { DecodeError } from './errors.js';

/**
 * One bounds-checked big-endian cursor over a byte range. Every read checks the bytes left
 * and throws DecodeError('truncated') instead of reading past `end`; decoders never index
 * the underlying buffer on a wire-supplied length without going through `need()` first.
 *
 * The reader is deliberately a small mutable class (not an immutable view per field) so the
 * hot path allocates nothing per field.
 */
export class Reader {
  readonly bytes: Uint8Array;
  /**
   * A DataView over the whole ArrayBuffer under `bytes`, so `bytes[i]` is at `base + i`:
   * read with `view.getUint32(base + i)`. Readers of one buffer share it (see viewOf), and
   * it lets reads past `bytes` but inside the buffer through, so every read must stay
   * behind a bounds check against `end`, as all of them are.
   */
  readonly view: DataView;
  readonly base: number;
  pos: number;
  end: number;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    if (start < 0 || end > bytes.length || start > end) {
      throw new DecodeError('truncated', `reader range ${start}..${end} outside ${bytes.length} bytes`);
    }
    this.bytes = bytes;
    this.view = viewOf(bytes.buffer);
    this.base = bytes.byteOffset;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throws unless `n` more bytes are available. `what` names the field for the error message. */
  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new DecodeError('truncated', `${what}: need ${n} bytes, ${this.end - this.pos} left`, this.pos);
    }
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }

  u16(what = 'u16'): number {
    this.need(2, what);
    const v = this.view.getUint16(this.base + this.pos);
    this.pos += 2;
    return v;
  }

  u32(what = 'u32'): number {
    this.need(4, what);
    const v = this.view.getUint32(this.base + this.pos);
    this.pos += 4;
    return v;
  }

  /** 64-bit unsigned as a double: exact up to 2^53, which no real counter reaches. */
  u64(what = 'u64'): number {
    this.need(8, what);
    const hi = this.view.getUint32(this.base + this.pos);
    const lo = this.view.getUint32(this.base + this.pos + 4);
    this.pos += 8;
    return hi * 4294967296 + lo;
  }

  /**
   * Unsigned integer of 1..8 octets (RFC 7011 section 6.2, reduced-size encoding):
   * exporters may send a counter in fewer octets than its abstract type.
   */
  uint(len: number, what = 'uint'): number {
    this.need(len, what);
    const v = readUintBE(this.bytes, this.pos, len);
    this.pos += len;
    return v;
  }

  skip(n: number, what = 'skip'): void {
    this.need(n, what);
    this.pos += n;
  }

  /** A sub-reader over the next `n` bytes; advances this reader past them. */
  sub(n: number, what = 'sub'): Reader {
    this.need(n, what);
    const r = new Reader(this.bytes, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
}

/**
 * The DataView of the last buffer seen. Making a DataView is a call into the runtime (about
 * a tenth of sFlow decode time when done per datagram); the datagrams of a receive batch
 * (collectors/batch-receive.ts) and of a capture file are views into one buffer, so one
 * DataView serves them all. It holds that one buffer alive until the next one is seen.
 */
let lastBuffer: ArrayBufferLike | undefined;
let lastView: DataView = new DataView(new ArrayBuffer(0));

function viewOf(buffer: ArrayBufferLike): DataView {
  if (buffer !== lastBuffer) {
    lastView = new DataView(buffer);
    lastBuffer = buffer;
  }
  return lastView;
}

/** Big-endian unsigned integer of 0..8 octets at `off`. Caller has checked the bounds. */
export function readUintBE(bytes: Uint8Array, off: number, len: number): number {
  let v = 0;
  for (let i = 0; i < len; i++) v = v * 256 + bytes[off + i]!;
  return v;
}

/** Big-endian u16 at `off`. Caller has checked the bounds. */
export function u16(bytes: Uint8Array, off: number): number {
  return (bytes[off]! << 8) | bytes[off + 1]!;
}

/** Big-endian u32 at `off`. Caller has checked the bounds. */
export function u32(bytes: Uint8Array, off: number): number {
  return ((bytes[off]! << 24) | (bytes[off + 1]! << 16) | (bytes[off + 2]! << 8) | bytes[off + 3]!) >>> 0;
}
