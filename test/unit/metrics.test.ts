import { describe, expect, it } from 'vitest';
import {
  createMetrics,
  decodeProcAddress,
  kernelUdpStatsForListeners,
  parseProcNetUdp,
  readKernelUdpSockets,
} from '../../src/metrics/index.js';
import type { RegistryStatus } from '../../src/registry/service.js';
import type { StoreSpoolStats } from '../../src/store/types.js';

// Captured on this machine (x86-64, little-endian) with sockets on 127.0.0.1:20550,
// [::]:47390 and [::1]:36173, plus hand-made lines with drops and an IPv4-mapped address.
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
 9146: 0100007F:5046 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 13526 2 000000001d29066f 0         
  812: 00000000:128B 00000000:0000 07 00000000:0001A2C0 00:00000000 00000000   105        0 99881 2 0000000000000000 1234
  813: 0A00020F:D431 08080808:0035 01 00000000:00000000 00:00000000 00000000  1000        0 99882 2 0000000000000000 0
garbage line
`;
const UDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 3218: 00000000000000000000000000000000:B91E 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 13525 2 000000000d26a816 0
 8385: 00000000000000000000000001000000:8D4D 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 13527 2 00000000c7792b85 0
  100: B80D0120000000000000000001000000:18BF 0000000000000000FFFF00000100007F:0035 07 00000000:00000200 00:00000000 00000000     0        0 4242 2 0000000000000000 77
`;

describe('/proc/net/udp parser', () => {
  it('parses IPv4 sockets: addresses, ports, queues, drops', () => {
    expect(parseProcNetUdp(UDP, true)).toEqual([
      {
        family: 4,
        localAddress: '127.0.0.1',
        localPort: 20550,
        remoteAddress: '0.0.0.0',
        remotePort: 0,
        state: 7,
        txQueueBytes: 0,
        rxQueueBytes: 0,
        uid: 0,
        inode: 13526,
        drops: 0,
      },
      {
        family: 4,
        localAddress: '0.0.0.0',
        localPort: 4747,
        remoteAddress: '0.0.0.0',
        remotePort: 0,
        state: 7,
        txQueueBytes: 0,
        rxQueueBytes: 107200,
        uid: 105,
        inode: 99881,
        drops: 1234,
      },
      {
        family: 4,
        localAddress: '15.2.0.10',
        localPort: 54321,
        remoteAddress: '8.8.8.8',
        remotePort: 53,
        state: 1,
        txQueueBytes: 0,
        rxQueueBytes: 0,
        uid: 1000,
        inode: 99882,
        drops: 0,
      },
    ]);
  });

  it('parses IPv6 sockets, compressing zeros and showing IPv4-mapped addresses dotted', () => {
    expect(
      parseProcNetUdp(UDP6, true).map((s) => [s.localAddress, s.localPort, s.remoteAddress, s.remotePort, s.rxQueueBytes, s.drops]),
    ).toEqual([
      ['::', 47390, '::', 0, 0, 0],
      ['::1', 36173, '::', 0, 0, 0],
      ['2001:db8::1', 6335, '::ffff:127.0.0.1', 53, 512, 77],
    ]);
  });

  it('decodes addresses in either byte order, refuses malformed ones', () => {
    expect(decodeProcAddress('0100007F', true)).toEqual({ address: '127.0.0.1', family: 4 });
    expect(decodeProcAddress('7F000001', false)).toEqual({ address: '127.0.0.1', family: 4 });
    expect(decodeProcAddress('20010DB8000000000000000000000001', false)).toEqual({ address: '2001:db8::1', family: 6 });
    expect(decodeProcAddress('7F0001', true)).toBeUndefined();
    expect(decodeProcAddress('XYZ0007F', true)).toBeUndefined();
    expect(parseProcNetUdp('', true)).toEqual([]);
  });

  it('sums drops per listener port over both files; a missing file adds nothing', () => {
    const sockets = readKernelUdpSockets((p) => {
      if (p === '/proc/net/udp') return UDP;
      if (p === '/proc/net/udp6') return UDP6.replace('B91E', '128B').replace(/ 0\n 8385/, ' 5\n 8385');
      throw new Error('ENOENT');
    });
    expect(
      kernelUdpStatsForListeners(
        [
          { name: 'ipfix', port: 4747 },
          { name: 'sflow', port: 6343 },
        ],
        sockets,
      ),
    ).toEqual([
      { listener: 'ipfix', port: 4747, drops: 1239, rxQueueBytes: 107200 },
      { listener: 'sflow', port: 6343, drops: 0, rxQueueBytes: 0 },
    ]);
    expect(
      readKernelUdpSockets(() => {
        throw new Error('ENOENT');
      }),
    ).toEqual([]);
  });
});

describe('metrics registry', () => {
  const status: RegistryStatus = {
    source: 'download',
    modified: '2025-09-04T12:01:55.844133+00:00',
    loadedAtMs: 1_000_000,
    lastAttemptMs: 1_500_000,
    lastError: 'HTTP 503',
    refreshes: 4,
    failures: 2,
    failuresByReason: { oversize: 1, timeout: 1, http: 0, network: 0, invalid: 0 },
  };

  it('defines every collector metric in one registry', async () => {
    const m = createMetrics();
    const names = (await m.registry.getMetricsAsJSON()).map((x) => `${x.name} ${x.type}`).sort();
    expect(names).toEqual([
      'scitags_buckets_lost_unclean_total counter',
      'scitags_buckets_written_total counter',
      'scitags_build_info gauge',
      'scitags_cardinality_exporter_folds_total counter',
      'scitags_cardinality_folds_total counter',
      'scitags_datagrams_dropped_total counter',
      'scitags_datagrams_received_total counter',
      'scitags_datagrams_rejected_total counter',
      'scitags_decode_errors_total counter',
      'scitags_decode_worker_restarts gauge',
      'scitags_decode_workers gauge',
      'scitags_decoder_crashes_total counter',
      'scitags_decoder_evictions_total counter',
      'scitags_decoder_exporter_evictions_total counter',
      'scitags_decoder_sessions gauge',
      'scitags_decoder_state_budget_bytes gauge',
      'scitags_decoder_state_bytes gauge',
      'scitags_decoder_state_save_failures_total counter',
      'scitags_exporter_labels_recycled_total counter',
      'scitags_exporter_last_seen_seconds gauge',
      'scitags_fireflies_accepted_total counter',
      'scitags_firefly_aggregation_total counter',
      'scitags_firefly_forwards_total counter',
      'scitags_goflow2_discarded_bytes_total counter',
      'scitags_goflow2_messages_total counter',
      'scitags_goflow2_stream_errors_total counter',
      'scitags_kernel_udp_drops_total counter',
      'scitags_kernel_udp_queued_bytes gauge',
      'scitags_late_records_total counter',
      'scitags_live_keys gauge',
      'scitags_queue_drops_total counter',
      'scitags_queue_length gauge',
      'scitags_receive_path_info gauge',
      'scitags_records_decoded_total counter',
      'scitags_records_lost_total counter',
      'scitags_registry_age_seconds gauge',
      'scitags_registry_info gauge',
      'scitags_registry_last_refresh_ok gauge',
      'scitags_registry_refresh_failures_total counter',
      'scitags_registry_refreshes_total counter',
      'scitags_sequence_gaps_total counter',
      'scitags_site_aggregation_total counter',
      'scitags_site_live_keys gauge',
      'scitags_socket_receive_buffer_bytes gauge',
      'scitags_store_auth_failed gauge',
      'scitags_store_probe_ok gauge',
      'scitags_store_rows_written_total counter',
      'scitags_store_write_failures_total counter',
      'scitags_store_write_seconds histogram',
      'scitags_store_writes_total counter',
      'scitags_syslog_tcp_closed_total counter',
      'scitags_syslog_tcp_connections_total counter',
      'scitags_syslog_tcp_messages_total counter',
      'scitags_syslog_tcp_open_connections gauge',
      'scitags_template_misses_total counter',
      'scitags_too_late_records_total counter',
      'scitags_traffic_bytes_total counter',
      'scitags_traffic_packets_total counter',
      'scitags_traffic_series_folded_total counter',
      'scitags_traffic_series_recycled_total counter',
      'scitags_unclean_shutdowns_total counter',
    ]);
  });

  it('says which build runs, with the commit label only when the build knows it', async () => {
    const withCommit = createMetrics({ build: { version: '1.2.3', node: 'v24.1.0', commit: 'c4c0864' } });
    expect(await withCommit.registry.getSingleMetricAsString('scitags_build_info')).toContain(
      'scitags_build_info{version="1.2.3",node="v24.1.0",commit="c4c0864"} 1',
    );
    const plain = createMetrics({ build: { version: '1.2.3', node: 'v24.1.0' } });
    expect(await plain.registry.getSingleMetricAsString('scitags_build_info')).toContain(
      'scitags_build_info{version="1.2.3",node="v24.1.0"} 1',
    );
  });

  it('adds process_* and nodejs_* metrics when asked', async () => {
    const names = (await createMetrics({ defaultMetrics: true }).registry.getMetricsAsJSON()).map((x) => x.name);
    expect(names).toContain('process_cpu_seconds_total');
    expect(names).toContain('process_resident_memory_bytes');
    expect(names).toContain('nodejs_eventloop_lag_seconds');
    expect(names).toContain('nodejs_heap_size_used_bytes');
    expect((await createMetrics().registry.getMetricsAsJSON()).map((x) => x.name).filter((n) => !n.startsWith('scitags_'))).toEqual([]);
  });

  it('reads the InfluxDB spool at scrape time, and has no spool metrics without a spool', async () => {
    let spool: StoreSpoolStats = {
      batches: 3,
      rows: 12_000,
      bytes: 2_500_000,
      oldestMs: 1_000_000,
      rejectedBatches: 1,
      lastErrorMs: 1_900_000,
    };
    const m = createMetrics({ now: () => 2_000_000, spool: () => spool });
    const lines = async () => (await m.registry.metrics()).split('\n').filter((l) => l.startsWith('scitags_influx_'));
    expect(await lines()).toEqual([
      'scitags_influx_spool_batches 3',
      'scitags_influx_spool_rows 12000',
      'scitags_influx_spool_bytes 2500000',
      'scitags_influx_spool_oldest_age_seconds 1000',
      'scitags_influx_last_error_timestamp_seconds 1900',
      'scitags_influx_spool_rejected_batches_total 1',
    ]);
    spool = { batches: 0, rows: 0, bytes: 0, oldestMs: undefined, rejectedBatches: 1, lastErrorMs: undefined };
    expect(await lines()).toEqual([
      'scitags_influx_spool_batches 0',
      'scitags_influx_spool_rows 0',
      'scitags_influx_spool_bytes 0',
      'scitags_influx_spool_oldest_age_seconds 0',
      'scitags_influx_last_error_timestamp_seconds 0',
      'scitags_influx_spool_rejected_batches_total 1',
    ]);
    expect((await createMetrics().registry.metrics()).includes('scitags_influx_')).toBe(false);
  });

  it('caps exporter label values, counting the rest as other', async () => {
    const m = createMetrics({ maxExporterLabels: 2 });
    for (const a of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.1', '2001:db8::9']) {
      m.decodeErrors.inc({ reason: 'truncated', exporter: m.exporterLabel(a) });
    }
    const text = await m.registry.getSingleMetricAsString('scitags_decode_errors_total');
    expect(text.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'scitags_decode_errors_total{reason="truncated",exporter="192.0.2.1"} 2',
      'scitags_decode_errors_total{reason="truncated",exporter="192.0.2.2"} 1',
      'scitags_decode_errors_total{reason="truncated",exporter="other"} 2',
    ]);
  });

  it('reads kernel drops, queue length, live keys and registry status at scrape time', async () => {
    let drops = 10;
    const m = createMetrics({
      now: () => 61_000_000,
      registryStatus: () => status,
      kernelUdp: () => [{ listener: 'ipfix', port: 4739, drops, rxQueueBytes: 2048 }],
      queueLength: () => 17,
      liveKeys: () => 3,
    });
    const lines = async () => (await m.registry.metrics()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const first = await lines();
    for (const l of [
      'scitags_kernel_udp_drops_total{listener="ipfix",port="4739"} 10',
      'scitags_kernel_udp_queued_bytes{listener="ipfix",port="4739"} 2048',
      'scitags_queue_length 17',
      'scitags_live_keys 3',
      'scitags_registry_info{source="download",modified="2025-09-04T12:01:55.844133+00:00"} 1',
      'scitags_registry_age_seconds 60000',
      'scitags_registry_refreshes_total{result="ok"} 4',
      'scitags_registry_refreshes_total{result="error"} 2',
      'scitags_registry_refresh_failures_total{reason="oversize"} 1',
      'scitags_registry_refresh_failures_total{reason="timeout"} 1',
      'scitags_registry_refresh_failures_total{reason="http"} 0',
      'scitags_registry_last_refresh_ok 0',
    ]) {
      expect(first).toContain(l);
    }
    drops = 25;
    expect(await lines()).toContain('scitags_kernel_udp_drops_total{listener="ipfix",port="4739"} 25');
  });
});
