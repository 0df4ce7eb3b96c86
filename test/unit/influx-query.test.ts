import { describe, expect, it } from 'vitest';
import { buildInfluxQueries, influxRowToStored } from '../../src/store/influx/query.js';

describe('InfluxQL for traffic queries', () => {
  it('pushes time, step, exporter and id filters down, with values escaped', () => {
    const q = buildInfluxQueries({
      fromMs: 1_795_600_000_000,
      toMs: 1_795_603_600_000,
      stepSeconds: 300,
      groupBy: ['community'],
      exporter: ["192.0.2.1' OR 1=1 --", '2001:db8::1'],
      community: [2],
    });
    expect(q.scitags).toBe(
      'SELECT sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records" FROM "scitags_traffic" ' +
        "WHERE time >= 1795600000000ms AND time < 1795603600000ms AND (\"exporter\" = '192.0.2.1\\' OR 1=1 --' OR \"exporter\" = '2001:db8::1') AND (\"community_id\" = '2') " +
        'GROUP BY time(300000ms), "exporter", "in_if", "out_if", "community_id", "activity_id", "nat64" fill(none)',
    );
    // a community filter leaves only marked traffic: no link_traffic query
    expect(q.links).toBeUndefined();
  });

  it('queries link_traffic for the unmarked classes asked for, and skips scitags_traffic when not asked', () => {
    const q = buildInfluxQueries({ fromMs: 0, toMs: 60_000, stepSeconds: 60, groupBy: ['class'], trafficClass: ['ipv4'] });
    expect(q.scitags).toBeUndefined();
    expect(q.links).toBe(
      'SELECT sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records" FROM "link_traffic" ' +
        'WHERE time >= 0ms AND time < 60000ms AND ("class" = \'ipv4\') GROUP BY time(60000ms), "exporter", "in_if", "out_if", "class", "nat64" fill(none)',
    );
  });

  it('maps result rows back to stored rows: none and unregistered become null', () => {
    const time = { getTime: () => 60_000 };
    expect(
      influxRowToStored(
        {
          time,
          exporter: 'r1',
          in_if: '7',
          out_if: 'none',
          community_id: 'unregistered',
          activity_id: 'unregistered',
          bytes: 5,
          packets: 1,
          records: 1,
        },
        'scitags',
      ),
    ).toEqual({
      bucketStartMs: 60_000,
      exporter: 'r1',
      inIf: 7,
      outIf: null,
      trafficClass: 'scitags',
      community: null,
      activity: null,
      bytes: 5,
      packets: 1,
      records: 1,
    });
    expect(
      influxRowToStored({ time, exporter: 'r1', in_if: '0', out_if: '3', class: 'ipv4', bytes: 9, packets: 2, records: 1 }, undefined),
    ).toMatchObject({
      inIf: 0,
      outIf: 3,
      trafficClass: 'ipv4',
      community: null,
      activity: null,
    });
  });
});
