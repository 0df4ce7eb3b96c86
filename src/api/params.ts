import { isIP } from 'node:net';
import type { GroupByDimension, TrafficClass } from '../store/types.js';

/** A semantic problem with one query parameter: answered with HTTP 400 naming it. */
export class BadParameter extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
    this.name = 'BadParameter';
  }
}

/** What a route answers from is switched off or not kept by this store: HTTP 503 "not available". */
export class NotAvailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotAvailable';
  }
}

// ---------------------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------------------

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 } as const;

/** JSON-schema pattern of `from` / `to` (checked again semantically by parseTime). */
export const TIME_PATTERN =
  '^(now(-[0-9]{1,9}[smhdw])?|[0-9]{1,15}(\\.[0-9]{1,9})?|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?([Zz]|[+ -][0-9]{2}:[0-9]{2}))$';

export const TIME_FORMS =
  'now, now-<n><s|m|h|d|w> (now-1h), epoch seconds (1735689600) or RFC 3339 (2025-01-01T00:00:00Z, 2025-01-01T01:00:00+01:00)';

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+ -])(\d{2}):(\d{2}))$/;

/**
 * Times a query may name: from the Unix epoch (flow data cannot be older; epoch seconds cannot
 * say less) to the last millisecond InfluxDB stores (int64 nanoseconds: 2262-04-11T23:47:16.854Z).
 * Both stores are asked only within it, so they answer alike; outside it is a 400 naming the
 * parameter, never a store error.
 */
export const MIN_TIME_MS = 0;
export const MAX_TIME_MS = 9_223_372_036_854;

/** parseTime, then the range check. */
export function parseBoundedTime(text: string, nowMs: number, parameter: string): number {
  const ms = parseTime(text, nowMs, parameter);
  if (!(ms >= MIN_TIME_MS && ms <= MAX_TIME_MS)) {
    throw new BadParameter(
      parameter,
      `must be between ${new Date(MIN_TIME_MS).toISOString()} and ${new Date(MAX_TIME_MS).toISOString()} (${JSON.stringify(text)} is outside)`,
    );
  }
  return ms;
}

/**
 * Parses a time parameter to ms since the epoch:
 *  - `now`, `now-<n><unit>` with unit s, m, h, d or w (`now-90s`, `now-1h`, `now-7d`);
 *  - epoch seconds, integer or decimal (`1735689600`, `1735689600.5`); values of 10^11 and
 *    more are refused as they look like milliseconds;
 *  - RFC 3339 with `Z` or an offset (`2025-01-01T00:00:00Z`, `2025-01-01T01:00:00+01:00`),
 *    `T` or a space between date and time; a `+` sent unencoded in a URL arrives as a space
 *    and is accepted as `+`.
 */
export function parseTime(text: string, nowMs: number, parameter: string): number {
  const rel = /^now(?:-(\d{1,9})([smhdw]))?$/.exec(text);
  if (rel) {
    if (rel[1] === undefined) return nowMs;
    return nowMs - Number(rel[1]) * UNIT_SECONDS[rel[2] as keyof typeof UNIT_SECONDS] * 1000;
  }
  if (/^\d{1,15}(\.\d{1,9})?$/.test(text)) {
    const seconds = Number(text);
    if (seconds >= 1e11) throw new BadParameter(parameter, `must be epoch seconds; ${text} looks like milliseconds`);
    return Math.round(seconds * 1000);
  }
  const m = RFC3339.exec(text);
  if (m) {
    const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
    const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
    const base = Date.UTC(y, mo - 1, d, h, mi, s, ms);
    const check = new Date(base);
    if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
      throw new BadParameter(parameter, `${JSON.stringify(text)} is not a valid date and time`);
    }
    if (m[8]) return base;
    const sign = m[9] === '-' ? -1 : 1;
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw new BadParameter(parameter, `${JSON.stringify(text)} has an invalid UTC offset`);
    return base - sign * (oh * 60 + om) * 60000;
  }
  throw new BadParameter(parameter, `must be one of: ${TIME_FORMS}`);
}

/** JSON-schema pattern of `step`. */
export const STEP_PATTERN = '^[0-9]{1,9}[smhd]?$';

/** "300", "30s", "5m", "1h", "1d" -> seconds. */
export function parseStep(text: string): number {
  const m = /^(\d{1,9})([smhd])?$/.exec(text);
  if (!m) throw new BadParameter('step', 'must be a duration in seconds (300) or with a unit (30s, 5m, 1h, 1d)');
  return Number(m[1]) * UNIT_SECONDS[(m[2] ?? 's') as keyof typeof UNIT_SECONDS];
}

// ---------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------

/** Dimensions of the site-pair view (the enricher's sites of the record's addresses). */
export type SiteDimension = 'srcSite' | 'dstSite' | 'site';
export const SITE_DIMENSIONS: readonly SiteDimension[] = ['srcSite', 'dstSite', 'site'];
/** Dimensions of GET /api/v1/traffic: the link view's, and the site view's (not both at once). */
export type TrafficGroupBy = GroupByDimension | SiteDimension;
export const GROUP_BY_DIMENSIONS: readonly TrafficGroupBy[] = [
  'community',
  'activity',
  'link',
  'exporter',
  'direction',
  'class',
  'nat64',
  ...SITE_DIMENSIONS,
];

/** Longest site name accepted in a filter (site names come from configuration or CRIC). */
const MAX_SITE_NAME = 200;

/** A comma-separated list of site names (a filter). */
export function siteList(text: string, parameter: string): string[] {
  const sites = filterList(text, parameter);
  for (const s of sites)
    if (s.length > MAX_SITE_NAME) throw new BadParameter(parameter, `site names are at most ${MAX_SITE_NAME} characters`);
  return sites;
}
export const TRAFFIC_CLASSES: readonly TrafficClass[] = ['scitags', 'ipv6_unmarked', 'ipv4', 'unknown'];

const alt = (xs: readonly string[]) => `(${xs.join('|')})`;
export const GROUP_BY_PATTERN = `^(${alt(GROUP_BY_DIMENSIONS)}(,${alt(GROUP_BY_DIMENSIONS)})*)?$`;
export const CLASS_PATTERN = `^${alt(TRAFFIC_CLASSES)}(,${alt(TRAFFIC_CLASSES)})*$`;
/** Comma-separated, non-empty items. */
export const LIST_PATTERN = '^[^,]+(,[^,]+)*$';

/** Comma-separated items, trimmed, duplicates removed (groupBy, class: their patterns forbid blanks). */
export function splitList(text: string): string[] {
  return [...new Set(text.split(',').map((s) => s.trim()))].filter((s) => s !== '');
}

/**
 * A filter's items: like splitList, but an empty or white-space-only item is a 400 naming the
 * parameter (a filter that names nothing must not answer with everything).
 */
export function filterList(text: string, parameter: string): string[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new BadParameter(parameter, 'must not be empty or contain empty or white-space-only items');
  return [...new Set(items)];
}

/**
 * The form exporters are stored under: IPv4-mapped IPv6 (::ffff:192.0.2.1, ::ffff:c000:201)
 * as the IPv4 address (dual-stack sockets report IPv4 peers so; the collector keys them as
 * IPv4), other IPv6 in its canonical text (lower case, zeros compressed, RFC 5952).
 * Undefined when it is not an address.
 */
export function normaliseAddress(text: string): string | undefined {
  const v = isIP(text);
  if (v === 4) return text;
  if (v !== 6) return undefined;
  const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!mapped) return canonical;
  const hi = parseInt(mapped[1]!, 16);
  const lo = parseInt(mapped[2]!, 16);
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

/** "192.0.2.1:7", "[2001:db8::1]:7" or "2001:db8::1:7" (split at the last colon) -> link key. */
export function parseLinkKey(text: string): { exporter: string; ifIndex: number } | undefined {
  const bracket = /^\[([^\]]+)\]:(\d{1,10})$/.exec(text);
  const plain = bracket ? undefined : /^(.+):(\d{1,10})$/.exec(text);
  const m = bracket ?? plain;
  if (!m) return undefined;
  const exporter = normaliseAddress(m[1]!);
  const ifIndex = Number(m[2]);
  if (exporter === undefined || ifIndex > 0xffffffff) return undefined;
  return { exporter, ifIndex };
}

/**
 * The canonical text of a link key, as shown in answers: "192.0.2.1:7", "[2001:db8::1]:7";
 * "192.0.2.1:-" when the exporter reported no interface.
 */
export function linkKey(exporter: string, ifIndex: number | null): string {
  const i = ifIndex === null ? '-' : String(ifIndex);
  return exporter.includes(':') ? `[${exporter}]:${i}` : `${exporter}:${i}`;
}
