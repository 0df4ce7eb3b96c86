export * from './metrics.js';
export * from './procnetudp.js';
