export * from './errors.js';
export * from './protocol.js';
export * from './dsdsl.js';
export * from './config.js';
export * from './log.js';
export * from './arrow.js';
export * from './store.js';
export * from './transport.js';
