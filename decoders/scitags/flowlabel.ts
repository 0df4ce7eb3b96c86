/**
 * SciTags flow-label codec (draft-cc-v6ops-wlcg-flow-label-marking).
 *
 * Bits 1..20 of the label, most significant first:
 *   1-2 entropy | 3-11 community, 9 bits, bit-reversed | 12 entropy | 13-18 activity | 19-20 entropy
 * so community = reverse9((label >> 9) & 0x1ff) and activity = (label >> 2) & 0x3f.
 */

/** Mask of the 20-bit flow label (RFC 6437); exporters such as pmacct send TC bits above it. */
export const FLOW_LABEL_MASK = 0xfffff;
/** Bits carrying community and activity; the remaining 5 bits are entropy. */
export const SCITAGS_BITS_MASK = 0x3fefc;

export const MAX_COMMUNITY = 511;
export const MAX_ACTIVITY = 63;

const REVERSE9 = new Uint16Array(512);
for (let v = 0; v < 512; v++) {
  let r = 0;
  for (let b = 0; b < 9; b++) if (v & (1 << b)) r |= 1 << (8 - b);
  REVERSE9[v] = r;
}

/** Reverses the order of the 9 low bits of `v`. */
export function reverse9(v: number): number {
  return REVERSE9[v & 0x1ff]!;
}

export function communityOf(label: number): number {
  return REVERSE9[(label >>> 9) & 0x1ff]!;
}

export function activityOf(label: number): number {
  return (label >>> 2) & 0x3f;
}

export interface ScitagsPair {
  community: number;
  activity: number;
}

/** Decodes a flow label (any width; masked to 20 bits first). Label 0 means unmarked: null. */
export function decodeFlowLabel(label: number): ScitagsPair | null {
  const l = label & FLOW_LABEL_MASK;
  if (l === 0) return null;
  return { community: communityOf(l), activity: activityOf(l) };
}

/**
 * Encodes a pair with the given 5 entropy bits (bit 4 -> label bit 1 ... bit 0 -> label bit 20,
 * in the order 1,2,12,19,20). Throws RangeError on out-of-range ids: the encoder serves tests
 * and tools, where a silent wrap would hide a bug.
 */
export function encodeFlowLabel(community: number, activity: number, entropy = 0): number {
  if (!Number.isInteger(community) || community < 0 || community > MAX_COMMUNITY) {
    throw new RangeError(`community ${community} outside 0..${MAX_COMMUNITY}`);
  }
  if (!Number.isInteger(activity) || activity < 0 || activity > MAX_ACTIVITY) {
    throw new RangeError(`activity ${activity} outside 0..${MAX_ACTIVITY}`);
  }
  if (!Number.isInteger(entropy) || entropy < 0 || entropy > 31) {
    throw new RangeError(`entropy ${entropy} outside 0..31`);
  }
  const e1e2 = (entropy >>> 3) & 0x3; // label bits 1-2 (value bits 19-18)
  const e12 = (entropy >>> 2) & 0x1; // label bit 12 (value bit 8)
  const e19e20 = entropy & 0x3; // label bits 19-20 (value bits 1-0)
  return (e1e2 << 18) | (reverse9(community) << 9) | (e12 << 8) | (activity << 2) | e19e20;
}
