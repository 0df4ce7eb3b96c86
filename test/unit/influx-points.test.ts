import { describe, expect, it } from 'vitest';
import { loadSnapshot } from '../../src/registry/loader.js';
import { rowsToPoints } from '../../src/store/influx/points.js';
import type { TrafficRow } from '../../src/store/types.js';

const T = 1_795_600_000_000;
const base = { bucketStartMs: T, bucketSeconds: 60, exporter: '192.0.2.1', inIf: 7, outIf: null, registered: true, records: 1 } as const;
const rows: TrafficRow[] = [
  { ...base, trafficClass: 'scitags', community: 2, activity: 2, bytes: 100, packets: 1 },
  { ...base, trafficClass: 'scitags', community: null, activity: null, registered: false, bytes: 50, packets: 2 },
  { ...base, trafficClass: 'scitags', community: 200, activity: 10, registered: false, bytes: 25, packets: 3 },
  { ...base, trafficClass: 'ipv4', community: null, activity: null, bytes: 7, packets: 4 },
];

describe('rowsToPoints (docs/influx-schema.md)', () => {
  it('writes marked rows by name and id, and one link_traffic point per link and class summed over the bucket', () => {
    const points = rowsToPoints(rows, {
      registry: () => loadSnapshot(0),
      link: (e, i) => (e === '192.0.2.1' && i === 7 ? { name: 'to-cern', capacityBps: 1e10 } : undefined),
    });
    const link = { exporter: '192.0.2.1', in_link: 'to-cern', out_link: 'none', in_if: '7', out_if: 'none' };
    expect(points).toEqual([
      {
        measurement: 'scitags_traffic',
        timestamp: new Date(T),
        tags: { ...link, community: 'atlas', activity: 'perfSONAR', community_id: '2', activity_id: '2' },
        fields: { bytes: 100, packets: 1, records: 1 },
      },
      {
        measurement: 'scitags_traffic',
        timestamp: new Date(T),
        tags: { ...link, community: 'unregistered', activity: 'unregistered', community_id: 'unregistered', activity_id: 'unregistered' },
        fields: { bytes: 50, packets: 2, records: 1 },
      },
      {
        measurement: 'scitags_traffic',
        timestamp: new Date(T),
        tags: { ...link, community: 'unregistered', activity: 'unregistered', community_id: '200', activity_id: '10' },
        fields: { bytes: 25, packets: 3, records: 1 },
      },
      {
        measurement: 'link_traffic',
        timestamp: new Date(T),
        tags: { ...link, class: 'scitags' },
        fields: { bytes: 175, packets: 6, records: 3, in_capacity_bps: 10000000000 },
      },
      {
        measurement: 'link_traffic',
        timestamp: new Date(T),
        tags: { ...link, class: 'ipv4' },
        fields: { bytes: 7, packets: 4, records: 1, in_capacity_bps: 10000000000 },
      },
    ]);
  });
});
