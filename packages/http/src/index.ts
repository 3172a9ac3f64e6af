export * from './server.js';
export * from './auth-routes.js';
