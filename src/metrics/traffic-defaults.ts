/**
 * Default of metrics.maxTrafficSeries, apart from traffic.ts so that loading the configuration
 * does not load prom-client.
 */
export const DEFAULT_MAX_TRAFFIC_SERIES = 10_000;

/** metrics.exporterLabelIdleSeconds: 10 minutes (twice Prometheus' 5-minute staleness); here, not in metrics.ts, for the same reason. */
export const DEFAULT_EXPORTER_LABEL_IDLE_SECONDS = 600;

/** metrics.trafficSeriesIdleSeconds: as long as exporter labels, for the same reason. */
export const DEFAULT_TRAFFIC_SERIES_IDLE_SECONDS = DEFAULT_EXPORTER_LABEL_IDLE_SECONDS;
