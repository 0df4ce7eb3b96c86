/**
 * SciTags fireflies (../shared/SCITAGS.md, "Fireflies"): the shapes shared by the parser
 * (decoders/firefly/), the flow table and site attribution (src/fireflies/, src/sites/), and
 * the per-bucket sums behind /api/v1/fireflies and the stores.
 *
 * A firefly is a UDP (or TCP-relayed) syslog message with a JSON body that a storage or
 * transfer host sends at the start, during and at the end of a transfer. Everything in it is
 * declared by the sending host: nothing here is trusted beyond what the schema checked.
 */

/** flow-lifecycle.state. */
export type FireflyState = 'start' | 'ongoing' | 'end';

/** How the message was framed in front of its JSON (for counters and `decode`). */
export type FireflyFraming =
  | 'rfc5424' // <PRI>1 TIMESTAMP HOST APP - firefly-json - {…} (flowd)
  | 'rfc5424-no-time' // <PRI>1 - HOST APP - firefly-json - {…} (XRootD)
  | 'bare' // {…} with no syslog header (flowd-go)
  | 'relay'; // a relay's BSD-syslog prefix in front of an RFC 5424 message (syslog-ng, rsyslog)

/** TCP information flowd-go puts in `netlink` (free-form on the wire; only these are kept). */
export interface FireflyNetlink {
  /** Smoothed round-trip time in milliseconds. */
  rttMs: number | undefined;
  /** Delivery rate in bytes per second. */
  deliveryRateBytesPerSecond: number | undefined;
  /** Retransmitted segments over the flow's life. */
  retransmits: number | undefined;
}

/** One validated firefly. Times are ms since the Unix epoch, in the sending host's clock. */
export interface Firefly {
  state: FireflyState;
  startMs: number;
  /** Required when state is 'end'. */
  endMs: number | undefined;
  currentMs: number | undefined;
  ipVersion: 4 | 6;
  /** Canonical text (IPv4 dotted quad, IPv6 RFC 5952), so equal addresses compare equal. */
  srcAddr: string;
  dstAddr: string;
  protocol: 'tcp' | 'udp';
  srcPort: number;
  dstPort: number;
  /** SciTags ids as declared by the host (registry names are looked up later). */
  experimentId: number;
  activityId: number;
  application: string | undefined;
  /** `usage`: bytes the reporting host received and sent on this flow so far. */
  receivedBytes: number | undefined;
  sentBytes: number | undefined;
  netlink: FireflyNetlink | undefined;
  framing: FireflyFraming;
  /** The syslog HOSTNAME / APP-NAME when the header has them. */
  host: string | undefined;
  appName: string | undefined;
}

/**
 * What the flow table (src/fireflies/) reports for the per-bucket sums: a flow opened, ended
 * (with what the firefly says about it) or expired without an end. Keys are bounded: ids
 * are the host's numbers (bounded by the id space), sites are names from the site map or
 * 'unknown'.
 */
export interface FireflyFlowEvent {
  kind: 'started' | 'ended' | 'expired';
  /** Collector receive time of the firefly (or the expiry time): the bucket it counts in. */
  atMs: number;
  experimentId: number;
  activityId: number;
  ipVersion: 4 | 6;
  srcSite: string;
  dstSite: string;
  /** 'ended' only (0 otherwise): from the firefly's start-time / end-time. */
  durationSeconds: number;
  /** 'ended' only: the flow's bytes in both directions, counted once. */
  bytes: number;
  /** 'ended' only: the larger direction's bytes over the duration, bit/s; undefined without usage or duration. */
  throughputBitsPerSecond: number | undefined;
  rttMs: number | undefined;
  /**
   * 'ended' only: netlink `deliveryRate` (flowd-go's tcp_info, bytes/s) x 8 in bit/s, the
   * latest reported, so it compares with the throughput; undefined when no firefly of the flow carried it.
   */
  deliveryRateBitsPerSecond: number | undefined;
  retransmits: number | undefined;
  /** The flow ended without a start seen by this collector. */
  withoutStart: boolean;
}
