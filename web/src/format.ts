/** Units a network engineer expects: bit/s and bytes with SI prefixes, packets/s. */

const PREFIXES = ['', 'k', 'M', 'G', 'T', 'P', 'E'] as const;

export function si(value: number, unit: string): string {
  if (!Number.isFinite(value)) return '—';
  if (value === 0) return `0 ${unit}`;
  let e = Math.min(PREFIXES.length - 1, Math.max(0, Math.floor(Math.log10(Math.abs(value)) / 3)));
  let v = value / 1000 ** e;
  // 999.96 rounds to 1000: say 1.00 k instead
  if (Math.abs(v) >= 999.95 && e < PREFIXES.length - 1) {
    e++;
    v /= 1000;
  }
  const digits = Math.abs(v) >= 100 || e === 0 ? (Number.isInteger(v) ? 0 : 1) : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${PREFIXES[e]}${unit}`;
}

export const bitRate = (bitsPerSecond: number): string => si(bitsPerSecond, 'bit/s');
export const packetRate = (packetsPerSecond: number): string => si(packetsPerSecond, 'packets/s');
export const bytes = (n: number): string => si(n, 'B');
/** An exact count with thin grouping (what the tests and a careful reader compare). */
export const exact = (n: number): string =>
  Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 3 });
export const percent = (part: number, whole: number): string => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '—');
/** A share the API computed (0..1; null when there was nothing to share). */
export const share = (fraction: number | null): string => (fraction === null ? '—' : `${(100 * fraction).toFixed(1)} %`);

export function age(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function clock(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
