import { stringify } from 'yaml';
import type { Config } from './schema.js';

export const MASK = '********';

const SECRET_KEY = /(password|secret|token|apikey|api_key)$/i;

/** A copy with secrets masked: password-like keys, and passwords inside URLs. */
export function maskSecrets<T>(value: T): T {
  const walk = (v: unknown, key: string | undefined): unknown => {
    if (typeof v === 'string') {
      if (key !== undefined && SECRET_KEY.test(key) && v !== '') return MASK;
      return maskUrlPassword(v);
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, undefined));
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    }
    return v;
  };
  return walk(value, undefined) as T;
}

function maskUrlPassword(s: string): string {
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@/\s]+@/i, `$1${MASK}@`);
}

/**
 * The resolved configuration as YAML (what `--dump-config` prints), secrets masked. The
 * output is itself a valid config file (with the masked password to fill in again).
 */
export function formatConfig(config: Config): string {
  return stringify(maskSecrets(config), { indent: 2, lineWidth: 0 });
}
