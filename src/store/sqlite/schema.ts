import type Database from 'better-sqlite3';
import { DURATION_BINS, THROUGHPUT_BINS } from '../../fireflies/histogram.js';

/**
 * Schema of the embedded store, versioned with SQLite's user_version: migration i takes the
 * file from version i to i + 1, so a later release can change the layout of existing files.
 *
 * One row per (bucket, exporter, inIf, outIf, class, community, activity). "Not reported" /
 * "folded" is stored as -1 rather than NULL because SQLite treats NULLs as distinct in a
 * primary key: with NULLs, ON CONFLICT would never match and a rewrite would add a row.
 * ifIndex is 0..2^32-1 and the SciTags ids are >= 0, so -1 is free. The key starts with the
 * bucket, so time-range queries and retention deletes are range scans.
 */
export const NONE = -1;

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE traffic (
     bucket_start   INTEGER NOT NULL,
     exporter       TEXT    NOT NULL,
     in_if          INTEGER NOT NULL,
     out_if         INTEGER NOT NULL,
     class          TEXT    NOT NULL CHECK (class IN ('scitags', 'ipv6_unmarked', 'ipv4', 'unknown')),
     community      INTEGER NOT NULL,
     activity       INTEGER NOT NULL,
     bucket_seconds INTEGER NOT NULL,
     registered     INTEGER NOT NULL,
     bytes          INTEGER NOT NULL,
     packets        INTEGER NOT NULL,
     records        INTEGER NOT NULL,
     PRIMARY KEY (bucket_start, exporter, in_if, out_if, class, community, activity)
   ) WITHOUT ROWID`,
  // Fireflies (issue 13): one row per (bucket, community, activity, ip version, src site, dst
  // site), the per-bucket sums of the flow table's events (src/fireflies/aggregate.ts). The
  // maxima are NULL while no ended flow carried the value; one count column per histogram bin
  // (src/fireflies/histogram.ts).
  `CREATE TABLE firefly (
     bucket_start        INTEGER NOT NULL,
     community           INTEGER NOT NULL,
     activity            INTEGER NOT NULL,
     ip_version          INTEGER NOT NULL CHECK (ip_version IN (4, 6)),
     src_site            TEXT    NOT NULL,
     dst_site            TEXT    NOT NULL,
     bucket_seconds      INTEGER NOT NULL,
     flows_started       INTEGER NOT NULL,
     flows_ended         INTEGER NOT NULL,
     flows_expired       INTEGER NOT NULL,
     flows_without_start INTEGER NOT NULL,
     bytes               INTEGER NOT NULL,
     duration_seconds    REAL    NOT NULL,
     throughput_sum      REAL    NOT NULL,
     throughput_count    INTEGER NOT NULL,
     throughput_max      REAL,
     rtt_sum             REAL    NOT NULL,
     rtt_count           INTEGER NOT NULL,
     rtt_max             REAL,
     retransmits         INTEGER NOT NULL,
     ${[...DURATION_BINS, ...THROUGHPUT_BINS].map((b) => `${b.name} INTEGER NOT NULL,`).join('\n     ')}
     PRIMARY KEY (bucket_start, community, activity, ip_version, src_site, dst_site)
   ) WITHOUT ROWID`,
  // Delivery rate of ended flows (flowd-go netlink deliveryRate x 8, bit/s): sum, count and
  // maximum like throughput and rtt. Rows written before have no such flows counted: 0 / NULL.
  `ALTER TABLE firefly ADD COLUMN delivery_rate_sum REAL NOT NULL DEFAULT 0;
   ALTER TABLE firefly ADD COLUMN delivery_rate_count INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE firefly ADD COLUMN delivery_rate_max REAL;`,
  // The IPv6 transition view (issue 14): traffic to or from a NAT64 prefix is its own row
  // (nat64 = 1), so the key gains a column; SQLite cannot change a primary key in place, so
  // the table is rebuilt (existing rows are nat64 = 0). And the site-pair view: the same
  // rows keyed by source and destination site instead of ifIndexes (src/enrich/enricher.ts).
  `CREATE TABLE traffic_v4 (
     bucket_start   INTEGER NOT NULL,
     exporter       TEXT    NOT NULL,
     in_if          INTEGER NOT NULL,
     out_if         INTEGER NOT NULL,
     class          TEXT    NOT NULL CHECK (class IN ('scitags', 'ipv6_unmarked', 'ipv4', 'unknown')),
     community      INTEGER NOT NULL,
     activity       INTEGER NOT NULL,
     nat64          INTEGER NOT NULL DEFAULT 0 CHECK (nat64 IN (0, 1)),
     bucket_seconds INTEGER NOT NULL,
     registered     INTEGER NOT NULL,
     bytes          INTEGER NOT NULL,
     packets        INTEGER NOT NULL,
     records        INTEGER NOT NULL,
     PRIMARY KEY (bucket_start, exporter, in_if, out_if, class, community, activity, nat64)
   ) WITHOUT ROWID;
   INSERT INTO traffic_v4 (bucket_start, exporter, in_if, out_if, class, community, activity, nat64,
                           bucket_seconds, registered, bytes, packets, records)
     SELECT bucket_start, exporter, in_if, out_if, class, community, activity, 0,
            bucket_seconds, registered, bytes, packets, records FROM traffic;
   DROP TABLE traffic;
   ALTER TABLE traffic_v4 RENAME TO traffic;
   CREATE TABLE site_traffic (
     bucket_start   INTEGER NOT NULL,
     exporter       TEXT    NOT NULL,
     src_site       TEXT    NOT NULL,
     dst_site       TEXT    NOT NULL,
     class          TEXT    NOT NULL CHECK (class IN ('scitags', 'ipv6_unmarked', 'ipv4', 'unknown')),
     community      INTEGER NOT NULL,
     activity       INTEGER NOT NULL,
     nat64          INTEGER NOT NULL CHECK (nat64 IN (0, 1)),
     bucket_seconds INTEGER NOT NULL,
     registered     INTEGER NOT NULL,
     bytes          INTEGER NOT NULL,
     packets        INTEGER NOT NULL,
     records        INTEGER NOT NULL,
     PRIMARY KEY (bucket_start, exporter, src_site, dst_site, class, community, activity, nat64)
   ) WITHOUT ROWID`,
  // The IPv4 destinations behind NAT64 (issue 14, src/enrich/nat64-top.ts): per bucket the
  // top N (transition.nat64TopN) of a Space-Saving sketch, rank 1 = most bytes. A bucket's
  // list is replaced whole when it is rewritten. address is the dotted-quad IPv4 address.
  `CREATE TABLE nat64_top (
     bucket_start   INTEGER NOT NULL,
     address        TEXT    NOT NULL,
     rank           INTEGER NOT NULL,
     bucket_seconds INTEGER NOT NULL,
     bytes          INTEGER NOT NULL,
     packets        INTEGER NOT NULL,
     error_bytes    INTEGER NOT NULL,
     PRIMARY KEY (bucket_start, address)
   ) WITHOUT ROWID`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the file to SCHEMA_VERSION; refuses a file written by a newer release. */
export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `${db.name}: schema version ${version} is newer than this release understands (${SCHEMA_VERSION}); ` +
        'upgrade scitags-collector or point the store at another file',
    );
  }
  db.transaction(() => {
    for (let v = version; v < SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }
  }).immediate();
}
