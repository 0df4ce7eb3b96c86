/**
 * Protocol detection from the first octets of a UDP payload (DESIGN.md, `ingest`): sFlow v5
 * starts with the 32-bit version 5 (sFlow v5 spec section 5: `unsigned int version`);
 * NetFlow v5 / v9 and IPFIX with the 16-bit version 5 / 9 / 10 (RFC 3954 5.1, RFC 7011 3.1).
 * A NetFlow v5 header has a non-zero record count in octets 2-3, so "00 00 00 05" can only
 * be sFlow.
 */
export type WireProtocol = 'sflow' | 'flow' | 'unknown';

export function detectProtocol(payload: Uint8Array): WireProtocol {
  if (payload.length < 4) return 'unknown';
  const b0 = payload[0]!;
  const b1 = payload[1]!;
  if (b0 === 0 && b1 === 0 && payload[2] === 0 && payload[3] === 5) return 'sflow';
  if (b0 === 0 && (b1 === 5 || b1 === 9 || b1 === 10)) return 'flow';
  return 'unknown';
}
