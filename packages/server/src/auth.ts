/**
 * Who is asking: every route declares the scope it needs in its config (`scope: 'predict' |
 * 'train' | 'admin'`, or `public: true` for /health, /oauth/* and the docs). The token comes from
 * `Authorization: Bearer <token>` or, for the web app, the HttpOnly session cookie.
 *
 * Authentication runs in two steps around the rate limiter: `identify` (onRequest) finds the
 * token and remembers what is wrong with it without answering, so the rate limiter can count
 * requests per token, or per address when there is no valid token; `enforce` then answers 401/403
 * before the body is read. A refused request does nothing else.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { allows, type Accounts, type Scope, type TokenRecord } from './accounts.js';
import { sendError } from './errors.js';

export const SESSION_COOKIE = 'descent_session';

declare module 'fastify' {
  interface FastifyRequest {
    auth: TokenRecord | null;
    authProblem: string | null;
    viaCookie: boolean;
  }
  interface FastifyContextConfig {
    /** The scope a route needs. */
    scope?: Scope;
    /** A route anyone may call (health, token endpoint, docs). */
    public?: boolean;
  }
}

const CHALLENGE = 'Bearer realm="descent"';

function cookieToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function identify(app: FastifyInstance, accounts: Accounts): void {
  app.decorateRequest('auth', null);
  app.decorateRequest('authProblem', null);
  app.decorateRequest('viaCookie', false);
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public || config.scope === undefined) return;
    const header = request.headers.authorization;
    let token: string | undefined;
    if (header !== undefined) {
      const match = /^Bearer ([^\s]+)$/i.exec(header);
      if (!match) {
        request.authProblem = 'malformed Authorization header: expected "Bearer <token>"';
        return;
      }
      token = match[1];
    } else {
      token = cookieToken(request.headers.cookie);
      if (token === undefined) {
        request.authProblem = 'missing token: send "Authorization: Bearer <token>" (POST /oauth/token gives one)';
        return;
      }
      request.viaCookie = true;
    }
    const record = await accounts.verify(token);
    if (!record) request.authProblem = 'the token is invalid, expired or revoked';
    else request.auth = record;
  });
}

export function enforce(app: FastifyInstance): void {
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const needs = request.routeOptions.config.scope;
    if (request.routeOptions.config.public || needs === undefined) return;
    if (!request.auth) {
      reply.header('www-authenticate', `${CHALLENGE}, error="invalid_token"`);
      return sendError(reply, 401, request.authProblem ?? 'unauthorized');
    }
    if (!allows(request.auth.scope, needs)) {
      reply.header('www-authenticate', `${CHALLENGE}, error="insufficient_scope", scope="${needs}"`);
      return sendError(reply, 403, `this needs a token with the '${needs}' scope; this one has '${request.auth.scope}'`);
    }
    // A session cookie is sent by the browser on its own: refuse writes started by another site.
    if (request.viaCookie && request.method !== 'GET' && request.method !== 'HEAD') {
      const origin = request.headers.origin;
      if (origin !== undefined && origin !== `${request.protocol}://${request.headers.host}`) {
        return sendError(reply, 403, `cross-origin request from ${origin.slice(0, 100)} refused`);
      }
    }
  });
}
