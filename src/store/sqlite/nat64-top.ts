import type Database from 'better-sqlite3';
import type { Nat64TopQuery, Nat64TopResult, Nat64TopRow } from '../nat64-top.js';

/** The NAT64 IPv4 top lists in the embedded store (table nat64_top, schema.ts migration 5). */

/** Replaces the whole list of every bucket present in `rows`, in one transaction. */
export function writeNat64Top(db: Database.Database, rows: readonly Nat64TopRow[]): void {
  const clear = db.prepare('DELETE FROM nat64_top WHERE bucket_start = ?');
  const insert = db.prepare(
    `INSERT INTO nat64_top (bucket_start, address, rank, bucket_seconds, bytes, packets, error_bytes)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (const b of new Set(rows.map((r) => r.bucketStartMs))) clear.run(b);
    for (const r of rows) insert.run(r.bucketStartMs, r.address, r.rank, r.bucketSeconds, r.bytes, r.packets, r.errorBytes);
  })();
}

interface DbRow {
  bucket_start: number;
  address: string;
  rank: number;
  bucket_seconds: number;
  bytes: number;
  packets: number;
  error_bytes: number;
}

const fromDb = (r: DbRow): Nat64TopRow => ({
  bucketStartMs: r.bucket_start,
  bucketSeconds: r.bucket_seconds,
  rank: r.rank,
  address: r.address,
  bytes: r.bytes,
  packets: r.packets,
  errorBytes: r.error_bytes,
});

/** Buckets starting in [fromMs, toMs), summed per address in SQL, largest bytes first. */
export function queryNat64Top(db: Database.Database, q: Nat64TopQuery): Nat64TopResult {
  const range = 'bucket_start >= ? AND bucket_start < ?';
  const counts = db
    .prepare(`SELECT COUNT(DISTINCT bucket_start) AS buckets, COUNT(DISTINCT address) AS addresses FROM nat64_top WHERE ${range}`)
    .get(q.fromMs, q.toMs) as { buckets: number; addresses: number };
  const destinations = db
    .prepare(
      `SELECT address, SUM(bytes) AS bytes, SUM(packets) AS packets, SUM(error_bytes) AS errorBytes, COUNT(*) AS buckets
       FROM nat64_top WHERE ${range} GROUP BY address ORDER BY SUM(bytes) DESC, address LIMIT ?`,
    )
    .all(q.fromMs, q.toMs, q.limit) as Nat64TopResult['destinations'];
  return { destinations, omitted: Math.max(0, counts.addresses - destinations.length), buckets: counts.buckets };
}

export function readNat64Top(db: Database.Database, fromMs: number): Nat64TopRow[] {
  return (db.prepare('SELECT * FROM nat64_top WHERE bucket_start >= ? ORDER BY bucket_start, rank').all(fromMs) as DbRow[]).map(fromDb);
}
