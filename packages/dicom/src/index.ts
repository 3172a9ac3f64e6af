export * from './errors.js';
export * from './dictionary.js';
export * from './uids.js';
export * from './source.js';
export * from './parse.js';
export * from './write.js';
export * from './header.js';
export * from './thumbnail.js';
