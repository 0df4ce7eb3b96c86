/**
 * Field dump by IANA name for the `decode` CLI (like `tshark -T json`): every field of the
 * record, including those the collector does not use. Off the hot path: only called when
 * the caller passes `withFields`.
 */
import { ipv4String, ipv6String } from '../packet/addr.js';
import { ieInfo, ieName, V9_SCOPE_NAMES } from './ie.js';
import type { DecodePlan } from './plan.js';

function hex(b: Uint8Array, o: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += b[o + i]!.toString(16).padStart(2, '0');
  return s;
}

function uint(b: Uint8Array, o: number, len: number): number | string {
  // Beyond 2^53 a double loses digits; print those (rare) values exactly in hex.
  if (len > 7 && b[o]! > 0x1f) return `0x${hex(b, o, len)}`;
  let v = 0;
  for (let i = 0; i < len; i++) v = v * 256 + b[o + i]!;
  return v;
}

function ntpIso(b: Uint8Array, o: number): string {
  const secs = b[o]! * 16777216 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) - 2208988800;
  const frac = b[o + 4]! * 16777216 + ((b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!);
  return new Date(secs * 1000 + Math.floor((frac * 1000) / 4294967296)).toISOString();
}

/** The value of one field, rendered by its abstract type (RFC 7012 section 3.1). */
export function renderValue(id: number, pen: number, b: Uint8Array, o: number, len: number): unknown {
  const info = pen === 0 ? ieInfo(id) : undefined;
  if (info === undefined) return hex(b, o, len);
  switch (info.type) {
    case 'unsigned':
      return len >= 1 && len <= 8 ? uint(b, o, len) : hex(b, o, len);
    case 'ipv4Address':
      return len === 4 ? ipv4String(b, o) : hex(b, o, len);
    case 'ipv6Address':
      return len === 16 ? ipv6String(b, o) : hex(b, o, len);
    case 'macAddress': {
      if (len !== 6) return hex(b, o, len);
      const parts: string[] = [];
      for (let i = 0; i < 6; i++) parts.push(b[o + i]!.toString(16).padStart(2, '0'));
      return parts.join(':');
    }
    case 'string':
      return new TextDecoder('utf-8', { fatal: false }).decode(b.subarray(o, o + len)).replace(/\0+$/, '');
    case 'dateTimeSeconds':
      return len === 4 ? new Date((uint(b, o, 4) as number) * 1000).toISOString() : hex(b, o, len);
    case 'dateTimeMilliseconds': {
      const v = len === 8 ? uint(b, o, 8) : undefined;
      return typeof v === 'number' ? new Date(v).toISOString() : hex(b, o, len);
    }
    case 'dateTimeMicroseconds':
    case 'dateTimeNanoseconds':
      return len === 8 ? ntpIso(b, o) : hex(b, o, len);
    default:
      return hex(b, o, len);
  }
}

/**
 * Renders the record at `b[start..end)` (bounds already validated by the data decoder) into
 * an object keyed by IANA name; a repeated element gets `#2`, `#3`... appended.
 */
export function dumpRecordFields(b: Uint8Array, start: number, end: number, plan: DecodePlan): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let p = start;
  for (let i = 0; i < plan.fieldCount && p <= end; i++) {
    let len = plan.lens[i]!;
    if (len < 0) {
      len = b[p++]!;
      if (len === 255) {
        len = (b[p]! << 8) | b[p + 1]!;
        p += 2;
      }
    }
    const id = plan.ids[i]!;
    const pen = plan.pens[i]!;
    const scope = i < plan.scopeCount;
    const base = plan.v9 && scope ? (V9_SCOPE_NAMES[id] ?? `scope${id}`) : ieName(id, pen);
    let name = base;
    for (let k = 2; name in out; k++) name = `${base}#${k}`;
    out[name] = plan.v9 && scope ? uint(b, p, Math.min(len, 8)) : renderValue(id, pen, b, p, len);
    p += len;
  }
  return out;
}
