import { readFileSync } from 'node:fs';
import type { InfluxStoreConfig } from '../../config/index.js';

/**
 * The password and token from `store.passwordFile` / `store.tokenFile`, read once at start
 * (a secret mounted by systemd LoadCredential, Docker or Kubernetes never appears on a
 * command line or in the config). A password keeps every character but the trailing newlines
 * an editor or `echo` adds; a token is trimmed. Throws one error naming the option: a file
 * that cannot be read, an empty one, or a file and a value both set.
 */
export function resolveInfluxCredentials(
  cfg: InfluxStoreConfig,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): InfluxStoreConfig {
  const fromFile = (option: string, path: string, trim: (s: string) => string): string => {
    let text: string;
    try {
      text = readFile(path);
    } catch (err) {
      throw new Error(`cannot read ${option} ${path}: ${(err as Error).message}`, { cause: err });
    }
    const value = trim(text);
    if (value === '') throw new Error(`${option} ${path} is empty`);
    return value;
  };
  let { password, token } = cfg;
  if (cfg.passwordFile !== '') {
    if (password !== '') throw new Error('store.password and store.passwordFile are both set: keep one');
    password = fromFile('store.passwordFile', cfg.passwordFile, (s) => s.replace(/(\r?\n)+$/, ''));
  }
  if (cfg.tokenFile !== '') {
    if (token !== '') throw new Error('store.token and store.tokenFile are both set: keep one');
    token = fromFile('store.tokenFile', cfg.tokenFile, (s) => s.trim());
  }
  return { ...cfg, password, token };
}
