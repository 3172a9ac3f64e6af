export { buildProgram } from './program.js';
export { progress, type Progress } from './progress.js';
export { configFor } from './context.js';
export * from './platform.js';
