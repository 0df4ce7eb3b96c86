import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDir, ensureWritableDir } from '../../src/ensure-dir.js';

describe('ensureDir', () => {
  it('creates every missing level and accepts an existing directory', () => {
    const base = mkdtempSync(join(tmpdir(), 'scitags-ensure-'));
    ensureDir(join(base, 'a', 'b', 'c'));
    expect(statSync(join(base, 'a', 'b', 'c')).isDirectory()).toBe(true);
    ensureDir(join(base, 'a', 'b', 'c'));
    expect(readdirSync(join(base, 'a'))).toEqual(['b']);
  });

  it('throws ENOENT under /proc at once, where mkdirSync({ recursive: true }) spins forever', () => {
    expect(() => ensureDir('/proc/scitags-x/y')).toThrow("ENOENT: no such file or directory, mkdir '/proc/scitags-x'");
  });

  it('throws ENOTDIR when a level is a file', () => {
    const base = mkdtempSync(join(tmpdir(), 'scitags-ensure-'));
    writeFileSync(join(base, 'f'), '');
    expect(() => ensureDir(join(base, 'f'))).toThrow(`ENOTDIR: not a directory, mkdir '${base}/f'`);
  });

  it('ensureWritableDir leaves no probe file behind and names the directory when it fails', () => {
    const base = mkdtempSync(join(tmpdir(), 'scitags-ensure-'));
    ensureWritableDir(join(base, 'd'), 'data directory');
    expect(readdirSync(join(base, 'd'))).toEqual([]);
    expect(() => ensureWritableDir('/proc/scitags-d', 'data directory')).toThrow(
      "data directory /proc/scitags-d is not writable: ENOENT: no such file or directory, mkdir '/proc/scitags-d'",
    );
    expect(existsSync('/proc/scitags-d')).toBe(false);
  });
});
