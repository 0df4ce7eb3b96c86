export * from './types.js';
export * from './params.js';
export * from './traffic.js';
export * from './server.js';
export * from './security.js';
