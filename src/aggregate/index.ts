export { Aggregator, createAggregator } from './aggregator.js';
export type { AggregatorDeps, AggregatorStats, TrafficSink } from './aggregator.js';
export { DEFAULT_AGGREGATOR_CONFIG, resolveAggregatorConfig } from './config.js';
export type { AggregatorConfig, PairSelector } from './config.js';
