export * from './config.js';
export * from './errors.js';
export * from './ids.js';
export * from './logger.js';
export * from './policy.js';
export * from './metrics.js';
