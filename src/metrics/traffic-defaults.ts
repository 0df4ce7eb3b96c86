/**
 * Default of metrics.maxTrafficSeries, apart from traffic.ts so that loading the configuration
 * does not load prom-client.
 */
export const DEFAULT_MAX_TRAFFIC_SERIES = 10_000;
