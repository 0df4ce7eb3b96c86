import type { Firefly } from '../../decoders/firefly/types.js';

/**
 * A firefly start in flowd-go's bare form (no syslog header), for the tests that send
 * fireflies over UDP: experiment 2 (ATLAS) activity 3 unless told otherwise.
 */
export function fireflyStart(
  afi: 'ipv4' | 'ipv6',
  src: string,
  dst: string,
  srcPort: number,
  dstPort: number,
  experiment = 2,
  activity = 3,
): string {
  return (
    `{"version":1,"flow-lifecycle":{"state":"start","start-time":"2026-11-29T08:58:48Z"},` +
    `"flow-id":{"afi":"${afi}","src-ip":"${src}","dst-ip":"${dst}","protocol":"tcp","src-port":${srcPort},"dst-port":${dstPort}},` +
    `"context":{"experiment-id":${experiment},"activity-id":${activity}}}`
  );
}

/** A parsed firefly (what the parser hands on): the start of an ATLAS (2, 3) TCP flow over IPv6, then `over`. */
export function parsedFirefly(over: Partial<Firefly> = {}): Firefly {
  return {
    state: 'start',
    startMs: 0,
    endMs: undefined,
    currentMs: undefined,
    ipVersion: 6,
    srcAddr: '2001:db8::1',
    dstAddr: '2001:db8::2',
    protocol: 'tcp',
    srcPort: 1094,
    dstPort: 40000,
    experimentId: 2,
    activityId: 3,
    application: undefined,
    receivedBytes: undefined,
    sentBytes: undefined,
    netlink: undefined,
    framing: 'bare',
    host: undefined,
    appName: undefined,
    ...over,
  };
}
