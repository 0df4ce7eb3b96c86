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
