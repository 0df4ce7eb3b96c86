/**
 * Firefly parsing (../shared/SCITAGS.md "Fireflies"): pure, bytes in, a validated Firefly or
 * a typed error with a bounded reason out. Never throws for bad input (the property tests
 * hold it to that).
 *
 * Framings seen in the field, all parsed from the first `{` on (as the spec advises):
 * - RFC 5424 (section 6): `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD {json}` (flowd);
 * - the same with the NILVALUE `-` for TIMESTAMP (XRootD);
 * - no header at all, `{json}` (flowd-go);
 * - a relay's BSD-syslog (RFC 3164) prefix in front of an RFC 5424 message, with or without
 *   its `<PRI>` (syslog-ng files: `Feb  1 18:54:27 HOST 1 TIMESTAMP HOST flowd - firefly-json - {json}`).
 *   Any other text in front of the `{` counts as a relay prefix too, with no host / app known.
 */
import { ipv6String } from '../packet/addr.js';
import type { Firefly, FireflyFraming, FireflyNetlink } from './types.js';
import { fireflySchema, type FireflyJson, parseTimeMs } from './schema.js';

/**
 * Largest firefly accepted, in bytes of the whole message (header included). A flowd
 * firefly is about 600 bytes and flowd-go's with netlink TCP info about 2 KiB; 16 KiB leaves
 * room for hosts that add their own keys while keeping JSON.parse of hostile input cheap.
 * Larger messages are refused before any parsing (`too-large`).
 */
export const FIREFLY_MAX_BYTES = 16 * 1024;

/** Why a message is not an accepted firefly (the bounded reason set counted per exporter). */
export const FireflyErrorReasons = [
  'too-large', // longer than FIREFLY_MAX_BYTES: refused before parsing
  'not-utf8', // the bytes are not UTF-8 text
  'not-firefly', // no `{` in the message: some other syslog line (a relay's own statistics)
  'not-json', // the text from the first `{` is not one JSON document
  'schema', // JSON, but not a firefly v1 (the detail names the field)
] as const;
export type FireflyErrorReason = (typeof FireflyErrorReasons)[number];

export interface FireflyError {
  reason: FireflyErrorReason;
  /** For humans and logs: the field and what is wrong with it, for `schema`. */
  detail: string;
}

export type FireflyResult = { ok: true; firefly: Firefly } | { ok: false; error: FireflyError };

const OPEN_BRACE = 0x7b;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The RFC 5424 header at the end of the text before the JSON: VERSION 1, TIMESTAMP (or `-`),
 * HOSTNAME, APP-NAME, PROCID, MSGID, and the NILVALUE or one SD-ELEMENT run as
 * STRUCTURED-DATA (section 6.3). `<PRI>` is optional (relays log the message without it).
 */
const RFC5424_TAIL = /(?:^|\s)(<\d{1,3}>)?1 (\S+) (\S+) (\S+) (\S+) (\S+) (?:-|\[.*\])\s*$/s;

/**
 * RFC 5424 section 6 bounds the header fields (HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID
 * 32 characters, TIMESTAMP about 32): with a short STRUCTURED-DATA it fits in 1 KiB.
 */
const MAX_HEADER_CHARS = 1024;

interface Header {
  framing: FireflyFraming;
  host: string | undefined;
  appName: string | undefined;
}

/** The framing, host and app of the text in front of the JSON. */
export function readHeader(prefix: string): Header {
  if (prefix.trim() === '') return { framing: 'bare', host: undefined, appName: undefined };
  // The header is looked for in the last MAX_HEADER_CHARS only: the regex backtracks per
  // candidate start, and a hostile prefix of "1 1 1 ..." must not cost O(n^2) on 16 KiB.
  const cut = Math.max(0, prefix.length - MAX_HEADER_CHARS);
  const m = RFC5424_TAIL.exec(prefix.slice(cut));
  if (!m) return { framing: 'relay', host: undefined, appName: undefined };
  const nil = (s: string | undefined): string | undefined => (s === undefined || s === '-' ? undefined : s);
  const host = nil(m[3]);
  const appName = nil(m[4]);
  // The header starts the message (only whitespace before it): the sender's own header.
  const own = cut === 0 && (m.index === 0 || prefix.slice(0, m.index).trim() === '');
  if (own && m[1] !== undefined) return { framing: m[2] === '-' ? 'rfc5424-no-time' : 'rfc5424', host, appName };
  return { framing: 'relay', host, appName };
}

/** RFC 5952 text of a valid IPv6 address (isIP already said so); the flow decoders' formatter. */
export function canonicalIPv6(text: string): string {
  const bytes = new Uint8Array(16);
  let s = text.toLowerCase();
  // A trailing dotted quad (RFC 4291 2.2 form 3) becomes the last two words.
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    const q = s
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    s = `${s.slice(0, lastColon + 1)}${((q[0]! << 8) | q[1]!).toString(16)}:${((q[2]! << 8) | q[3]!).toString(16)}`;
  }
  const dbl = s.indexOf('::');
  const head = dbl < 0 ? s.split(':') : s.slice(0, dbl) === '' ? [] : s.slice(0, dbl).split(':');
  const tail = dbl < 0 ? [] : s.slice(dbl + 2) === '' ? [] : s.slice(dbl + 2).split(':');
  const words = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  for (let i = 0; i < 8; i++) {
    const w = parseInt(words[i]!, 16);
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  }
  return ipv6String(bytes, 0);
}

/** Finite non-negative number at `obj[key]`, else undefined. */
function num(obj: unknown, key: string): number | undefined {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const v = (obj as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/**
 * What is kept of `netlink`: flowd-go puts Linux `tcp_info` under `tcpInfo` (rtt in
 * microseconds, deliveryRate in bytes/s, totalRetrans: linux/tcp.h struct tcp_info); the same
 * keys directly in `netlink` are read too. Undefined when none of them is there.
 */
export function readNetlink(netlink: Record<string, unknown> | undefined): FireflyNetlink | undefined {
  if (netlink === undefined) return undefined;
  const info = typeof netlink['tcpInfo'] === 'object' && netlink['tcpInfo'] !== null ? netlink['tcpInfo'] : netlink;
  const rttUs = num(info, 'rtt');
  const rate = num(info, 'deliveryRate');
  const retrans = num(info, 'totalRetrans') ?? num(info, 'retransmits');
  if (rttUs === undefined && rate === undefined && retrans === undefined) return undefined;
  return { rttMs: rttUs === undefined ? undefined : rttUs / 1000, deliveryRateBytesPerSecond: rate, retransmits: retrans };
}

function fail(reason: FireflyErrorReason, detail: string): FireflyResult {
  return { ok: false, error: { reason, detail } };
}

/** Builds the Firefly from a schema-valid document. */
function toFirefly(j: FireflyJson, header: Header): Firefly {
  const life = j['flow-lifecycle'];
  const id = j['flow-id'];
  const v6 = id.afi === 'ipv6';
  const endText = life['end-time'];
  const currentText = life['current-time'];
  return {
    state: life.state,
    startMs: parseTimeMs(life['start-time'])!,
    endMs: endText === undefined ? undefined : parseTimeMs(endText),
    currentMs: currentText === undefined ? undefined : parseTimeMs(currentText),
    ipVersion: v6 ? 6 : 4,
    srcAddr: v6 ? canonicalIPv6(id['src-ip']) : id['src-ip'],
    dstAddr: v6 ? canonicalIPv6(id['dst-ip']) : id['dst-ip'],
    protocol: id.protocol,
    srcPort: id['src-port'],
    dstPort: id['dst-port'],
    experimentId: j.context['experiment-id'],
    activityId: j.context['activity-id'],
    application: j.context.application,
    receivedBytes: j.usage?.received,
    sentBytes: j.usage?.sent,
    netlink: readNetlink(j.netlink),
    framing: header.framing,
    host: header.host,
    appName: header.appName,
  };
}

/** Parses one firefly message (a UDP datagram, or one TCP-framed syslog message). */
export function parseFirefly(payload: Uint8Array): FireflyResult {
  if (payload.length > FIREFLY_MAX_BYTES) return fail('too-large', `${payload.length} bytes (limit ${FIREFLY_MAX_BYTES})`);
  const brace = payload.indexOf(OPEN_BRACE);
  if (brace < 0) return fail('not-firefly', 'no JSON object in the message');
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return fail('not-utf8', 'the message is not UTF-8');
  }
  // `{` is one byte in UTF-8 and never part of a multi-byte sequence: the same split in text.
  const at = text.indexOf('{');
  let doc: unknown;
  try {
    doc = JSON.parse(text.slice(at));
  } catch (err) {
    return fail('not-json', err instanceof Error ? err.message.slice(0, 200) : 'JSON.parse failed');
  }
  const checked = fireflySchema.safeParse(doc);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? '(document)' : issue.path.join('.');
    return fail('schema', `${field}: ${issue?.message ?? 'invalid'}`);
  }
  return { ok: true, firefly: toFirefly(checked.data, readHeader(text.slice(0, at))) };
}
