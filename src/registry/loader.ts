import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from './registry.js';
import { validateRegistryDocument } from './schema.js';
import { ensureDir } from '../ensure-dir.js';

export const DEFAULT_REGISTRY_URL = 'https://www.scitags.org/api.json';

/** The snapshot shipped in the package (data/registry-snapshot.json at the package root). */
export function snapshotPath(): string {
  // This file is src/registry/loader.ts under vitest and dist/src/registry/loader.js when built.
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', 'data'), join(here, '..', '..', '..', 'data')];
  for (const dir of candidates) {
    const p = join(dir, 'registry-snapshot.json');
    try {
      readFileSync(p, { flag: 'r' }).subarray(0, 1);
      return p;
    } catch {
      // try the next layout
    }
  }
  throw new Error(`registry snapshot not found next to ${here}`);
}

export function parseRegistryText(text: string): ReturnType<typeof validateRegistryDocument> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`SciTags registry is not JSON: ${(err as Error).message}`);
  }
  return validateRegistryDocument(doc);
}

export function loadSnapshot(nowMs: number): Registry {
  return new Registry(parseRegistryText(readFileSync(snapshotPath(), 'utf8')), 'snapshot', nowMs);
}

/** Loads the cache file if it exists and validates; undefined otherwise (the caller falls back). */
export function loadCache(cacheFile: string, nowMs: number): { registry: Registry | undefined; error: string | undefined } {
  let text: string;
  try {
    text = readFileSync(cacheFile, 'utf8');
  } catch {
    return { registry: undefined, error: undefined };
  }
  try {
    return { registry: new Registry(parseRegistryText(text), 'cache', nowMs), error: undefined };
  } catch (err) {
    return { registry: undefined, error: `${cacheFile}: ${(err as Error).message}` };
  }
}

/** Writes the cache atomically (temp file + rename), so a crash never leaves half a file. */
export function saveCache(cacheFile: string, text: string): void {
  ensureDir(dirname(cacheFile));
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, cacheFile);
}
