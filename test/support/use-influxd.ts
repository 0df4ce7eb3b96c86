import { afterAll, beforeAll } from 'vitest';
import { type InfluxdHandle, startInfluxd } from './influxd.js';

/**
 * A private influxd for the enclosing describe block: started before its tests, destroyed
 * after them. Returns a getter, since the handle exists only once beforeAll has run. Kept
 * apart from influxd.ts, which the benches import outside vitest.
 */
export function useInfluxd(): () => InfluxdHandle {
  let db: InfluxdHandle | undefined;
  beforeAll(async () => {
    db = await startInfluxd();
  });
  afterAll(async () => {
    await db?.destroy();
  });
  return () => {
    if (db === undefined) throw new Error('influxd is not running: read useInfluxd() inside a test, not while collecting');
    return db;
  };
}
