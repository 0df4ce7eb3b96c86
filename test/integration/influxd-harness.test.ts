import { describe, expect, it } from 'vitest';
import { influxdAvailable, startInfluxd } from '../support/influxd.js';

describe.skipIf(!influxdAvailable())('influxd test harness', () => {
  it('starts a private influxd on loopback, answers queries, restarts on the same data', async () => {
    const db = await startInfluxd();
    try {
      const q = async (query: string, method = 'GET') =>
        (await (await fetch(`${db.url}/query?q=${encodeURIComponent(query)}`, { method })).json()) as { results: unknown[] };
      await q('CREATE DATABASE harness', 'POST');
      const w = await fetch(`${db.url}/write?db=harness&precision=s`, { method: 'POST', body: 'm,t=a v=3i 1700000000' });
      expect(w.status).toBe(204);
      await db.stop();
      await db.restart();
      const res = await fetch(`${db.url}/query?db=harness&q=${encodeURIComponent('SELECT v FROM m')}`);
      expect(await res.json()).toEqual({
        results: [{ statement_id: 0, series: [{ name: 'm', columns: ['time', 'v'], values: [['2023-11-14T22:13:20Z', 3]] }] }],
      });
    } finally {
      await db.destroy();
    }
  });
});
