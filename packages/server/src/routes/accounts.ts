/**
 * OAuth 2 (RFC 6749 §4.3 and §6, RFC 7009): POST /oauth/token with grant_type=password (username,
 * password, optional scope) or grant_type=refresh_token; POST /oauth/revoke. Form-encoded or JSON.
 * Errors follow the RFC: `{ error: "invalid_grant", error_description }`, plus our `message`.
 *
 * The web app's sign-in: POST /api/v1/session puts an access token in an HttpOnly,
 * SameSite=Strict cookie; DELETE /api/v1/session revokes it.
 *
 * Personal tokens (GET/POST /api/v1/tokens, DELETE /api/v1/tokens/{id}), users (admin) and the
 * request-time metrics (admin).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SCOPES, USER_NAME, allows, type IssuedToken, type Scope } from '../accounts.js';
import { SESSION_COOKIE } from '../auth.js';
import { errorReplies, errorSchema, HttpError } from '../errors.js';
import type { ServerContext } from '../context.js';
import type { Timings } from '../timings.js';

export interface TokenLifetimes {
  /** Seconds an access token from /oauth/token lives. */
  access: number;
  /** Seconds a refresh token lives. */
  refresh: number;
}

const oauthError = {
  type: 'object',
  properties: { error: { type: 'string' }, error_description: { type: 'string' }, statusCode: { type: 'integer' }, message: { type: 'string' } },
} as const;

const tokenReply = {
  type: 'object',
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer'] },
    expires_in: { type: 'integer' },
    refresh_token: { type: 'string' },
    scope: { type: 'string' },
  },
} as const;

const tokenInfo = {
  type: 'object',
  properties: {
    id: { type: 'integer' }, kind: { type: 'string' }, name: { type: ['string', 'null'] }, scope: { type: 'string' }, user: { type: ['string', 'null'] },
    created_at: { type: 'string' }, expires_at: { type: ['string', 'null'] }, revoked_at: { type: ['string', 'null'] },
  },
} as const;

function oauthFail(reply: FastifyReply, statusCode: number, error: string, description: string): FastifyReply {
  if (statusCode === 401) reply.header('www-authenticate', 'Basic realm="descent"');
  return reply.code(statusCode).send({ error, error_description: description, statusCode, message: description });
}

function issuedReply(access: IssuedToken, refresh: IssuedToken) {
  return {
    access_token: access.token,
    token_type: 'Bearer' as const,
    expires_in: Math.round(((access.expiresAt ?? Date.now()) - Date.now()) / 1000),
    refresh_token: refresh.token,
    scope: access.scope,
  };
}

export function accountRoutes(app: FastifyInstance, { accounts, lifetimes, timings, batches, loginRateLimit }: ServerContext & {
  lifetimes: TokenLifetimes; timings: Timings; batches: { batches: number; images: number }; loginRateLimit: { max: number; timeWindow: number };
}): void {
  const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store').header('pragma', 'no-cache');

  /** The password grant: the user, and the scope asked for (at most the user's). */
  const passwordGrant = async (username: string | undefined, password: string | undefined, scope: string | undefined) => {
    if (!username || !password) return { error: 'invalid_request', description: 'username and password are required' } as const;
    const user = await accounts.checkPassword(username, password);
    if (!user) return { error: 'invalid_grant', description: 'wrong username or password' } as const;
    const asked = (scope ?? user.scope) as Scope;
    if (!SCOPES.includes(asked)) return { error: 'invalid_scope', description: `scope must be one of ${SCOPES.join(', ')}` } as const;
    if (!allows(user.scope, asked)) return { error: 'invalid_scope', description: `user ${user.name} may ask for scopes up to '${user.scope}'` } as const;
    return { user, scope: asked } as const;
  };

  app.post<{ Body: { grant_type?: string; username?: string; password?: string; scope?: string; refresh_token?: string } }>('/oauth/token', {
    config: { public: true, rateLimit: loginRateLimit },
    schema: {
      tags: ['auth'],
      summary: 'OAuth 2 token endpoint: grant_type=password (username, password, scope) or grant_type=refresh_token',
      security: [],
      body: {
        type: 'object',
        properties: {
          grant_type: { type: 'string', maxLength: 50 },
          username: { type: 'string', maxLength: 100 },
          password: { type: 'string', maxLength: 1024 },
          scope: { type: 'string', maxLength: 50 },
          refresh_token: { type: 'string', maxLength: 100 },
          client_id: { type: 'string', maxLength: 200 },
        },
      },
      response: { 200: tokenReply, 400: oauthError, 401: oauthError, 429: errorSchema },
    },
  }, async (request, reply) => {
    noStore(reply);
    const body = request.body ?? {};
    if (body.grant_type === 'password') {
      const grant = await passwordGrant(body.username, body.password, body.scope);
      if ('error' in grant) return oauthFail(reply, 400, grant.error!, grant.description!);
      const refresh = await accounts.issue('refresh', grant.scope, { userId: grant.user.id, ttlSeconds: lifetimes.refresh });
      const access = await accounts.issue('access', grant.scope, { userId: grant.user.id, ttlSeconds: lifetimes.access, parentId: refresh.id });
      request.log.info({ user: grant.user.name, scope: grant.scope, token: access.id }, 'token issued');
      return issuedReply(access, refresh);
    }
    if (body.grant_type === 'refresh_token') {
      if (!body.refresh_token) return oauthFail(reply, 400, 'invalid_request', 'refresh_token is required');
      const renewed = await accounts.refresh(body.refresh_token, lifetimes.access, lifetimes.refresh);
      if (!renewed) return oauthFail(reply, 400, 'invalid_grant', 'the refresh token is invalid, expired, revoked or already used');
      return issuedReply(renewed.access, renewed.refresh);
    }
    return oauthFail(reply, 400, body.grant_type ? 'unsupported_grant_type' : 'invalid_request', body.grant_type ? `grant_type ${body.grant_type.slice(0, 50)} is not supported (password, refresh_token)` : 'grant_type is required');
  });

  app.post<{ Body: { token?: string } }>('/oauth/revoke', {
    config: { public: true },
    schema: {
      tags: ['auth'], summary: 'Revoke a token (RFC 7009): an access, refresh or personal token; revoking a refresh token revokes its access tokens too',
      security: [],
      body: { type: 'object', properties: { token: { type: 'string', maxLength: 100 }, token_type_hint: { type: 'string', maxLength: 50 } } },
      response: { 200: { type: 'object', properties: {} }, 400: oauthError },
    },
  }, async (request, reply) => {
    if (!request.body?.token) return oauthFail(reply, 400, 'invalid_request', 'token is required');
    await accounts.revokeSecret(request.body.token);
    return {};
  });

  // ---- the web app's session cookie ----

  app.post<{ Body: { username: string; password: string } }>('/api/v1/session', {
    config: { public: true, rateLimit: loginRateLimit },
    schema: {
      tags: ['auth'], summary: 'Sign in for the web app: sets an HttpOnly, SameSite=Strict session cookie',
      security: [],
      body: { type: 'object', properties: { username: { type: 'string', maxLength: 100 }, password: { type: 'string', maxLength: 1024 } }, required: ['username', 'password'], additionalProperties: false },
      response: { 200: { type: 'object', properties: { user: { type: 'string' }, scope: { type: 'string' }, expires_in: { type: 'integer' } } }, ...errorReplies(400) },
    },
  }, async (request, reply) => {
    const grant = await passwordGrant(request.body.username, request.body.password, undefined);
    if ('error' in grant) throw new HttpError(401, grant.description!, 'password');
    const access = await accounts.issue('access', grant.scope, { userId: grant.user.id, ttlSeconds: lifetimes.access, name: 'session' });
    const secure = request.protocol === 'https' ? '; Secure' : '';
    reply.header('set-cookie', `${SESSION_COOKIE}=${access.token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${lifetimes.access}${secure}`);
    noStore(reply);
    return { user: grant.user.name, scope: grant.scope, expires_in: lifetimes.access };
  });

  app.get('/api/v1/session', {
    config: { scope: 'predict' },
    schema: {
      tags: ['auth'], summary: 'Who the token or session cookie belongs to, its scope and expiry',
      response: { 200: { type: 'object', properties: { user: { type: ['string', 'null'] }, scope: { type: 'string' }, expires_at: { type: ['string', 'null'] } } }, ...errorReplies() },
    },
  }, async (request, reply) => {
    const auth = request.auth!;
    noStore(reply);
    return { user: auth.userName, scope: auth.scope, expires_at: auth.expiresAt === null ? null : new Date(auth.expiresAt).toISOString() };
  });

  app.delete('/api/v1/session', {
    config: { scope: 'predict' },
    schema: { tags: ['auth'], summary: 'Sign out: revokes the session and clears the cookie', response: { 204: { type: 'null' }, ...errorReplies() } },
  }, async (request, reply) => {
    if (request.auth) await accounts.revoke(request.auth.id);
    reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
    return reply.code(204).send();
  });

  // ---- personal tokens ----

  const mayManage = async (request: FastifyRequest, id: number): Promise<boolean> => {
    const owner = await accounts.tokenOwner(id);
    if (!owner) return false;
    return request.auth!.scope === 'admin' || (owner.userId !== null && owner.userId === request.auth!.userId);
  };

  app.get('/api/v1/tokens', {
    config: { scope: 'predict' },
    schema: { tags: ['auth'], summary: "Your tokens (every token, for admin); never the secrets", response: { 200: { type: 'object', properties: { tokens: { type: 'array', items: tokenInfo } } }, ...errorReplies() } },
  }, async (request) => ({ tokens: await accounts.listTokens(request.auth!.scope === 'admin' ? undefined : request.auth!.userId) }));

  app.post<{ Body: { name: string; scope: Scope; expires_in?: number | null } }>('/api/v1/tokens', {
    config: { scope: 'predict' },
    schema: {
      tags: ['auth'], summary: 'Create a personal token (shown once) with a scope up to your own',
      body: {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200 },
          scope: { type: 'string', enum: [...SCOPES] },
          expires_in: { type: ['integer', 'null'], minimum: 60, maximum: 10 * 365 * 86400, default: 30 * 86400, description: 'seconds; null: never' },
        },
        required: ['name', 'scope'],
        additionalProperties: false,
      },
      response: { 201: { type: 'object', properties: { id: { type: 'integer' }, token: { type: 'string' }, scope: { type: 'string' }, expires_at: { type: ['string', 'null'] } } }, ...errorReplies(400) },
    },
  }, async (request, reply) => {
    const { name, scope, expires_in: ttl = 30 * 86400 } = request.body;
    if (!allows(request.auth!.scope, scope)) throw new HttpError(403, `scope: your token has '${request.auth!.scope}'; it cannot create a '${scope}' token`, 'scope');
    const issued = await accounts.issue('personal', scope, { userId: request.auth!.userId, name, ttlSeconds: ttl });
    noStore(reply);
    return reply.code(201).send({ id: issued.id, token: issued.token, scope, expires_at: issued.expiresAt === null ? null : new Date(issued.expiresAt).toISOString() });
  });

  app.delete<{ Params: { id: number } }>('/api/v1/tokens/:id', {
    config: { scope: 'predict' },
    schema: {
      tags: ['auth'], summary: 'Revoke a token (yours; any, for admin)',
      params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] },
      response: { 204: { type: 'null' }, ...errorReplies(404) },
    },
  }, async (request, reply) => {
    if (!(await mayManage(request, request.params.id))) throw new HttpError(404, `no token ${request.params.id} of yours`, 'id');
    await accounts.revoke(request.params.id);
    return reply.code(204).send();
  });

  // ---- admin ----

  app.get('/api/v1/users', {
    config: { scope: 'admin' },
    schema: { tags: ['admin'], summary: 'Users', response: { 200: { type: 'object', properties: { users: { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' }, name: { type: 'string' }, scope: { type: 'string' }, created_at: { type: 'string' } } } } } }, ...errorReplies() } },
  }, async () => ({ users: await accounts.listUsers() }));

  app.post<{ Body: { name: string; password: string; scope: Scope } }>('/api/v1/users', {
    config: { scope: 'admin' },
    schema: {
      tags: ['admin'], summary: 'Add a user',
      body: {
        type: 'object',
        properties: { name: { type: 'string', pattern: USER_NAME.source }, password: { type: 'string', minLength: 8, maxLength: 1024 }, scope: { type: 'string', enum: [...SCOPES], default: 'train' } },
        required: ['name', 'password'],
        additionalProperties: false,
      },
      response: { 201: { type: 'object', properties: { id: { type: 'integer' }, name: { type: 'string' }, scope: { type: 'string' } } }, ...errorReplies(400, 409) },
    },
  }, async (request, reply) => {
    const { name, password, scope } = request.body;
    if ((await accounts.listUsers()).some((u) => u.name === name)) throw new HttpError(409, `user ${name} already exists`, 'name');
    const id = await accounts.addUser(name, password, scope);
    return reply.code(201).send({ id, name, scope });
  });

  app.get('/api/v1/metrics', {
    config: { scope: 'admin' },
    schema: {
      tags: ['admin'], summary: 'Mean time per request phase (parse, decode, predict, store, reply), per route, and the predict batches, since the start',
      response: { 200: { type: 'object', additionalProperties: true }, ...errorReplies() },
    },
  }, async () => ({
    routes: timings.summary(),
    predict_batches: { batches: batches.batches, images: batches.images, mean_images: batches.batches ? batches.images / batches.batches : 0 },
    memory: process.memoryUsage(),
  }));
}
