export * from './types.js';
export * from './params.js';
export * from './traffic.js';
export * from './links.js';
export * from './server.js';
export * from './security.js';
