export * from './metrics.js';
export * from './procnetudp.js';
export * from './traffic.js';
