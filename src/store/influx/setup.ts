import { escape, type InfluxDB } from 'influx';

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
  const cqs = new Set(ours.map((row) => (row as unknown as { name: string }).name));
  for (const measurement of ['scitags_traffic', 'link_traffic']) {
    const name = measurement === 'scitags_traffic' ? 'cq_scitags_1h' : 'cq_link_1h';
    if (cqs.has(name)) continue;
    const src = `${db}.${escape.quoted(cfg.rawPolicy)}.${escape.quoted(measurement)}`;
    const dst = `${db}.${escape.quoted(cfg.rollupPolicy)}.${escape.quoted(measurement)}`;
    await influx.query(
      `CREATE CONTINUOUS QUERY ${escape.quoted(name)} ON ${db} RESAMPLE EVERY 10m FOR 2h BEGIN ` +
        `SELECT sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records" INTO ${dst} FROM ${src} GROUP BY time(1h), * END`,
    );
  }
}
