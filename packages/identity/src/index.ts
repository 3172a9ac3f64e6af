export * from './identity.js';
export * from './oidc.js';
export * from './passwords.js';
