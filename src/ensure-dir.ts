import { closeSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * `mkdir -p` that always ends. Node's `mkdirSync(dir, { recursive: true })` loops forever at
 * 100 % CPU when the kernel answers ENOENT for a directory whose parent exists (any path
 * under /proc or /sys): it retries the parent, finds it, and tries again. Here every missing
 * level is created once, top down, and the first refusal is thrown.
 */
export function ensureDir(dir: string): void {
  const missing: string[] = [];
  let p = resolve(dir);
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const parent = dirname(p);
      if (parent === p) throw err;
      missing.push(p);
      p = parent;
      continue;
    }
    if (!isDir) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${p}'`), { code: 'ENOTDIR', path: p });
    break;
  }
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m);
    } catch (err) {
      // Another process made it meanwhile: fine, if it is a directory.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && statSync(m).isDirectory()) continue;
      throw err;
    }
  }
}

/**
 * Creates `dir` if needed and proves it writable with a small file written and removed, so a
 * collector that could not save its state, registry cache or spool refuses to start instead
 * of finding out an hour later. Throws one error naming the directory.
 */
export function ensureWritableDir(dir: string, what: string): void {
  try {
    ensureDir(dir);
    const probe = join(dir, `.write-test-${process.pid}`);
    const fd = openSync(probe, 'w');
    try {
      writeSync(fd, 'ok\n');
    } finally {
      closeSync(fd);
    }
    unlinkSync(probe);
  } catch (err) {
    throw new Error(`${what} ${dir} is not writable: ${(err as Error).message}`, { cause: err });
  }
}
