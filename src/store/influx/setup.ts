import { escape, type InfluxDB } from 'influx';
import { FIREFLY_MEASUREMENT, FIREFLY_SUMS } from './firefly.js';

/**
 * Optional start-up provisioning (docs/influx-schema.md, "Retention and roll-ups"): the
 * database, a default retention policy for the raw buckets, a longer one for hourly
 * roll-ups, and continuous queries that sum each hour into it with every tag kept.
 */
export interface InfluxSetupConfig {
  database: string;
  rawPolicy: string;
  rawDuration: string;
  rollupPolicy: string;
  rollupDuration: string;
  continuousQueries: boolean;
}

export const DEFAULT_SETUP: Omit<InfluxSetupConfig, 'database'> = {
  rawPolicy: 'raw',
  rawDuration: '30d',
  rollupPolicy: 'rollup_1h',
  rollupDuration: '400d',
  continuousQueries: true,
};

const DURATION = /^(\d+)(h|d|w)$|^INF$/;

export async function provisionInflux(influx: InfluxDB, cfg: InfluxSetupConfig): Promise<void> {
  for (const d of [cfg.rawDuration, cfg.rollupDuration]) {
    if (!DURATION.test(d)) throw new Error(`retention duration ${JSON.stringify(d)} must look like 30d, 12w, 48h or INF`);
  }
  await influx.createDatabase(cfg.database);
  const existing = new Set((await influx.showRetentionPolicies(cfg.database)).map((p) => p.name));
  const db = escape.quoted(cfg.database);
  const ensure = async (name: string, duration: string, isDefault: boolean): Promise<void> => {
    const verb = existing.has(name) ? 'ALTER' : 'CREATE';
    await influx.query(
      `${verb} RETENTION POLICY ${escape.quoted(name)} ON ${db} DURATION ${duration} REPLICATION 1${isDefault ? ' DEFAULT' : ''}`,
    );
  };
  await ensure(cfg.rawPolicy, cfg.rawDuration, true);
  await ensure(cfg.rollupPolicy, cfg.rollupDuration, false);
  if (!cfg.continuousQueries) return;
  // SHOW CONTINUOUS QUERIES lists every database (one result series each), whatever database
  // the request names: only the series of ours says whether our queries exist.
  const shown = await influx.showContinousQueries(cfg.database);
  const ours = shown.groups().find((g) => g.name === cfg.database)?.rows ?? [];
  const rows = ours as unknown as { name: string; query: string }[];
  const cqs = new Map(rows.map((r) => [r.name, r.query]));
  for (const cq of ROLLUPS) {
    const existing = cqs.get(cq.name);
    // A query from an older release (without the fields added since) is replaced; one that
    // already rolls every field up is left alone, so a restart changes nothing.
    if (existing !== undefined && cq.mustMention.every((f) => existing.includes(f))) continue;
    if (existing !== undefined) await influx.query(`DROP CONTINUOUS QUERY ${escape.quoted(cq.name)} ON ${db}`);
    const src = `${db}.${escape.quoted(cfg.rawPolicy)}.${escape.quoted(cq.measurement)}`;
    const dst = `${db}.${escape.quoted(cfg.rollupPolicy)}.${escape.quoted(cq.measurement)}`;
    await influx.query(
      `CREATE CONTINUOUS QUERY ${escape.quoted(cq.name)} ON ${db} RESAMPLE EVERY 10m FOR 2h BEGIN ` +
        `SELECT ${cq.select} INTO ${dst} FROM ${src} GROUP BY time(1h), * END`,
    );
  }
}

const SUMS = 'sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records"';

/**
 * The hourly roll-ups. Link capacities are carried as the hour's maximum so the utilisation
 * panel (bytes over capacity) works on `rollup_1h` too. Fireflies roll up with the sums the
 * API adds (counts, bytes, durations and histogram bins summed; sum and count of each mean;
 * maxima by max), every tag kept (instance included, so instances stay disjoint there too).
 * `mustMention` is what a current query's text (as SHOW CONTINUOUS QUERIES prints it,
 * identifiers unquoted) contains.
 */
export const ROLLUPS = [
  { name: 'cq_scitags_1h', measurement: 'scitags_traffic', select: SUMS, mustMention: ['sum(bytes)'] },
  {
    name: 'cq_link_1h',
    measurement: 'link_traffic',
    select: `${SUMS}, max("in_capacity_bps") AS "in_capacity_bps", max("out_capacity_bps") AS "out_capacity_bps"`,
    mustMention: ['sum(bytes)', 'max(in_capacity_bps)', 'max(out_capacity_bps)'],
  },
  {
    name: 'cq_firefly_1h',
    measurement: FIREFLY_MEASUREMENT,
    select: FIREFLY_SUMS,
    mustMention: ['sum(flows_started)', 'max(rtt_max_ms)', 'sum(delivery_rate_count)', 'max(delivery_rate_max_bps)'],
  },
] as const;
