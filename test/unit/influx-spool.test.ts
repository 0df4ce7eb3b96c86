import { mkdtempSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskSpool } from '../../src/store/influx/spool.js';

/** The spool's read-only depth figures (the scitags_influx_spool_* gauges), on real files. */
describe('InfluxDB spool depth', () => {
  const size = (dir: string) => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

  it('counts batches, rows and bytes, and knows when the oldest batch was spooled', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spool-'));
    let t = 1_000_000;
    const spool = new DiskSpool<number[]>(dir, 1 << 20, () => t);
    expect(spool.stats()).toEqual({ batches: 0, bytes: 0, rows: 0, oldestMs: undefined, rejectedBatches: 0 });
    spool.push([1, 2, 3]);
    t = 2_000_000;
    spool.push([4, 5]);
    expect(spool.stats()).toEqual({ batches: 2, bytes: size(dir), rows: 5, oldestMs: 1_000_000, rejectedBatches: 0 });
    spool.shift();
    expect(spool.stats()).toEqual({ batches: 1, bytes: size(dir), rows: 2, oldestMs: 2_000_000, rejectedBatches: 0 });
  });

  it('after a restart takes rows from the file names (reading only files of older versions) and ages from mtimes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spool-'));
    const first = new DiskSpool<number[]>(dir, 1 << 20);
    first.push([1, 2, 3, 4]);
    // A batch spooled by a version that did not put the row count in the name.
    writeFileSync(join(dir, '000000000007.batch.json'), JSON.stringify([9, 9]));
    const names = readdirSync(dir).sort();
    expect(names).toEqual(['000000000000.r4.batch.json', '000000000007.batch.json']);
    utimesSync(join(dir, names[0]!), 1_700_000_000, 1_700_000_000);
    const again = new DiskSpool<number[]>(dir, 1 << 20);
    expect(again.stats()).toEqual({ batches: 2, bytes: size(dir), rows: 6, oldestMs: 1_700_000_000_000, rejectedBatches: 0 });
    expect(again.peek()).toEqual([1, 2, 3, 4]);
    again.shift();
    expect(again.peek()).toEqual([9, 9]);
    // New batches continue the sequence after the highest one found.
    again.push([1]);
    expect(readdirSync(dir).sort()).toEqual(['000000000007.batch.json', '000000000008.r1.batch.json']);
  });
});
