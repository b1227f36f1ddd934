/** descent's REST server: see app.ts for the shape, and routes/ for the API. */
export { createServer, DEFAULT_TOKEN_LIFETIMES, DEFAULT_UPLOAD_LIMITS, type DescentServer, type ServerOptions } from './app.js';
export { Accounts, SCOPES, TOKEN_FORMAT, allows, hashPassword, parseDuration, scopeRank, tokenHash, verifyPassword, type Scope, type TokenInfo, type TokenKind } from './accounts.js';
export { SESSION_COOKIE } from './auth.js';
export type { JobDefinition, JobView } from './training.js';
