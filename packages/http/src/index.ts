export * from './server.js';
export * from './auth-routes.js';
export * from './audit-routes.js';
