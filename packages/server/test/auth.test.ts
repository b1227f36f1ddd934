// Accounts, tokens and scopes: the OAuth password and refresh grants, revocation, personal tokens,
// and every way a token can be wrong (missing, malformed, expired, revoked, wrong scope): a 401 or
// 403 JSON answer and nothing else happens. Rate limits per token, while /health keeps answering.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timestamp } from '@descent/store';
import { TOKEN_FORMAT, tokenHash, verifyPassword, hashPassword } from '../src/index.js';
import { countRows, startServer, type TestServer } from './helpers.js';

let t: TestServer;

beforeAll(async () => {
  t = await startServer({ rateLimit: 0, loginsPerMinute: 1000 });
  await t.server.accounts.addUser('ada', 'correct horse battery', 'train');
  await t.server.accounts.addUser('root', 'admin password 1', 'admin');
});
afterAll(async () => t?.close());

async function login(username: string, password: string, scope?: string) {
  const body = new URLSearchParams({ grant_type: 'password', username, password, ...(scope ? { scope } : {}) });
  return fetch(`${t.url}/oauth/token`, { method: 'POST', body });
}

describe('passwords and tokens', () => {
  it('stores scrypt hashes and verifies them; tokens are 256-bit and stored only as hashes', async () => {
    const hash = await hashPassword('hunter22 hunter22');
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    expect(await verifyPassword('hunter22 hunter22', hash)).toBe(true);
    expect(await verifyPassword('hunter22 hunter23', hash)).toBe(false);
    const issued = await t.server.accounts.issue('personal', 'predict', { name: 'x', ttlSeconds: 60 });
    expect(issued.token).toMatch(TOKEN_FORMAT);
    expect(Buffer.from(issued.token.slice(4), 'base64url')).toHaveLength(32);
    const rows = await t.store.driver.all<Record<string, unknown>>('SELECT * FROM tokens WHERE id = ?', [issued.id]);
    expect(rows[0].token_hash).toBe(tokenHash(issued.token));
    expect(JSON.stringify(rows)).not.toContain(issued.token.slice(4));
    const users = await t.store.driver.all<Record<string, unknown>>('SELECT * FROM users');
    expect(JSON.stringify(users)).not.toContain('correct horse battery');
  });
});

describe('OAuth 2', () => {
  it('the password grant gives an expiring bearer token and a refresh token; refreshing rotates both', async () => {
    const response = await login('ada', 'correct horse battery');
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const grant = await response.json() as Record<string, unknown>;
    expect(grant).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'train' });
    expect(grant.access_token).toMatch(/^dsa_/);
    expect(grant.refresh_token).toMatch(/^dsr_/);
    expect((await t.request('/api/v1/datasets', { token: grant.access_token as string })).status).toBe(200);

    const renewed = await fetch(`${t.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: grant.refresh_token }) });
    expect(renewed.status).toBe(200);
    const next = await renewed.json() as Record<string, string>;
    expect(next.access_token).not.toBe(grant.access_token);
    expect((await t.request('/api/v1/datasets', { token: next.access_token })).status).toBe(200);
    // A refresh token works once.
    const again = await fetch(`${t.url}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: grant.refresh_token as string }) });
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_grant' });
    // Revoking the new refresh token takes its access token with it.
    expect((await fetch(`${t.url}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: next.refresh_token }) })).status).toBe(200);
    expect((await t.request('/api/v1/datasets', { token: next.access_token })).status).toBe(401);
  });

  it('refuses wrong passwords, unknown users, scopes above the user\'s and unknown grants, in the RFC\'s words', async () => {
    const cases: Array<[Promise<Response>, string]> = [
      [login('ada', 'wrong password!'), 'invalid_grant'],
      [login('nobody', 'correct horse battery'), 'invalid_grant'],
      [login('ada', 'correct horse battery', 'admin'), 'invalid_scope'],
      [login('ada', 'correct horse battery', 'root'), 'invalid_scope'],
      [fetch(`${t.url}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials' }) }), 'unsupported_grant_type'],
      [fetch(`${t.url}/oauth/token`, { method: 'POST', body: new URLSearchParams({ username: 'ada' }) }), 'invalid_request'],
    ];
    const before = await countRows(t.store, 'tokens');
    for (const [pending, error] of cases) {
      const response = await pending;
      expect(response.status).toBe(400);
      expect((await response.json() as Record<string, unknown>).error).toBe(error);
    }
    expect(await countRows(t.store, 'tokens')).toBe(before);
    const narrower = await (await login('ada', 'correct horse battery', 'predict')).json() as Record<string, string>;
    expect(narrower.scope).toBe('predict');
  });
});

describe('bad tokens', () => {
  const attempt = (token: string | null, headers: Record<string, string> = {}) =>
    t.request('/api/v1/datasets', { method: 'POST', token, headers, json: { name: `made-${Math.random().toString(36).slice(2)}`, classes: ['a', 'b'] } });

  it('missing, malformed, unknown, expired and revoked tokens get 401 JSON and create nothing', async () => {
    const expired = await t.server.accounts.issue('personal', 'admin', { name: 'old', ttlSeconds: 60 });
    await t.store.driver.run('UPDATE tokens SET expires_at = ? WHERE id = ?', [timestamp(new Date(Date.now() - 1000)), expired.id]);
    const revoked = await t.server.accounts.issue('personal', 'admin', { name: 'gone', ttlSeconds: 60 });
    await t.request(`/api/v1/tokens/${revoked.id}`, { method: 'DELETE' });
    const refresh = await t.server.accounts.issue('refresh', 'admin', { ttlSeconds: 60 });
    const cases: Array<[string | null, Record<string, string>, RegExp]> = [
      [null, {}, /^missing token/],
      [null, { authorization: 'Basic YWRhOnB3' }, /^malformed Authorization header/],
      [null, { authorization: `Bearer ${t.tokens.admin} extra` }, /^malformed/],
      ['not-a-token', {}, /invalid, expired or revoked/],
      [`dsp_${'A'.repeat(43)}`, {}, /invalid, expired or revoked/],
      [expired.token, {}, /invalid, expired or revoked/],
      [revoked.token, {}, /invalid, expired or revoked/],
      [refresh.token, {}, /invalid, expired or revoked/], // a refresh token is not an access token
    ];
    const datasets = await countRows(t.store, 'datasets');
    for (const [token, headers, message] of cases) {
      const response = await attempt(token, headers);
      expect(response.status, JSON.stringify([token, headers])).toBe(401);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="descent"/);
      const body = await response.json() as Record<string, unknown>;
      expect(body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
      expect(body.message).toMatch(message);
    }
    expect(await countRows(t.store, 'datasets')).toBe(datasets);
  });

  it('a token below the route\'s scope gets 403 and does nothing (predict < train < admin)', async () => {
    const datasets = await countRows(t.store, 'datasets');
    const response = await attempt(t.tokens.predict);
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope", scope="train"');
    expect(await response.json()).toMatchObject({ statusCode: 403, message: "this needs a token with the 'train' scope; this one has 'predict'" });
    expect(await countRows(t.store, 'datasets')).toBe(datasets);
    expect((await t.request('/api/v1/users', { token: t.tokens.train })).status).toBe(403);
    expect((await t.request('/api/v1/users', { token: t.tokens.admin })).status).toBe(200);
    expect((await t.request('/api/v1/models', { token: t.tokens.predict })).status).toBe(200);
    const users = await countRows(t.store, 'users');
    expect((await t.request('/api/v1/users', { method: 'POST', token: t.tokens.train, json: { name: 'eve', password: 'longenough1' } })).status).toBe(403);
    expect(await countRows(t.store, 'users')).toBe(users);
  });

  it('any Authorization header either authenticates a real token or gets one JSON 401 line (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 80 }), fc.stringMatching(/^Bearer ds[arp]_[A-Za-z0-9_-]{43}$/), fc.stringMatching(/^[Bb]earer .{0,60}$/)), async (header) => {
        const clean = header.replace(/[^\x20-\x7e]/g, '');
        const response = await fetch(`${t.url}/api/v1/models`, { headers: { authorization: clean } });
        expect(response.status).toBe(401);
        const body = await response.json() as Record<string, unknown>;
        expect(body.statusCode).toBe(401);
        expect(String(body.message)).not.toContain('\n');
      }),
      { seed: 1301, numRuns: 60 },
    );
  });

  it('personal tokens: created with a scope up to your own, listed without secrets, revoked', async () => {
    const created = await t.request('/api/v1/tokens', { method: 'POST', token: t.tokens.train, json: { name: 'ci', scope: 'predict', expires_in: 3600 } });
    expect(created.status).toBe(201);
    const { token, id } = await created.json() as { token: string; id: number };
    expect((await t.request('/api/v1/models', { token })).status).toBe(200);
    expect((await t.request('/api/v1/tokens', { method: 'POST', token: t.tokens.train, json: { name: 'up', scope: 'admin' } })).status).toBe(403);
    const listed = await (await t.request('/api/v1/tokens')).text();
    expect(listed).toContain('"name":"ci"');
    expect(listed).not.toContain(token.slice(4));
    expect((await t.request(`/api/v1/tokens/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await t.request('/api/v1/models', { token })).status).toBe(401);
  });
});

describe('the web app session', () => {
  it('sets an HttpOnly SameSite=Strict cookie that authenticates, refuses cross-site writes, and signs out', async () => {
    const signIn = await fetch(`${t.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'ada', password: 'correct horse battery' }) });
    expect(signIn.status).toBe(200);
    const cookie = signIn.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^descent_session=dsa_[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=3600$/);
    const session = cookie.split(';')[0];
    expect((await t.request('/api/v1/datasets', { token: null, headers: { cookie: session } })).status).toBe(200);
    const me = await t.request('/api/v1/session', { token: null, headers: { cookie: session } });
    expect(me.headers.get('cache-control')).toBe('no-store');
    const who = await me.json() as { user: string; scope: string; expires_at: string };
    expect(who).toMatchObject({ user: 'ada', scope: 'train' });
    expect(Date.parse(who.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    expect((await t.request('/api/v1/session', { token: null })).status).toBe(401);
    const crossSite = await t.request('/api/v1/datasets', { method: 'POST', token: null, headers: { cookie: session, origin: 'http://evil.example' }, json: { name: 'csrf' } });
    expect(crossSite.status).toBe(403);
    expect(await t.store.getDataset('csrf')).toBeUndefined();
    expect((await t.request('/api/v1/session', { method: 'DELETE', token: null, headers: { cookie: session } })).status).toBe(204);
    expect((await t.request('/api/v1/datasets', { token: null, headers: { cookie: session } })).status).toBe(401);
  });
});

describe('rate limits', () => {
  it('limits requests per token; another token and /health keep answering', async () => {
    const limited = await startServer({ rateLimit: 5 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await limited.request('/api/v1/models', { token: limited.tokens.predict })).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
      const refused = await limited.request('/api/v1/models', { token: limited.tokens.predict });
      expect(await refused.json()).toMatchObject({ statusCode: 429, error: 'Too Many Requests' });
      expect((await limited.request('/api/v1/models', { token: limited.tokens.train })).status).toBe(200);
      for (let i = 0; i < 20; i++) expect((await fetch(`${limited.url}/health`)).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('the web app', () => {
  it('serves a built app cross-origin isolated, its index.html for the app\'s own paths, and JSON 404s under /api', async () => {
    const appDir = mkdtempSync(join(tmpdir(), 'server-app-'));
    mkdirSync(join(appDir, 'assets'));
    writeFileSync(join(appDir, 'index.html'), '<!doctype html><title>descent</title>');
    writeFileSync(join(appDir, 'assets', 'app.js'), 'console.log(1)');
    const served = await startServer({ appDir });
    try {
      for (const path of ['/', '/assets/app.js', '/models/3', '/predictions']) {
        const response = await fetch(`${served.url}${path}`);
        expect(response.status, path).toBe(200);
        expect(response.headers.get('cross-origin-opener-policy'), path).toBe('same-origin');
        expect(response.headers.get('cross-origin-embedder-policy'), path).toBe('require-corp');
        expect(await response.text(), path).toBe(path.endsWith('.js') ? 'console.log(1)' : '<!doctype html><title>descent</title>');
      }
      const api = await fetch(`${served.url}/api/v1/nothing`);
      expect(api.status).toBe(404);
      expect(api.headers.get('cross-origin-resource-policy')).toBe('same-origin');
      expect(await api.json()).toMatchObject({ statusCode: 404 });
      expect((await fetch(`${served.url}/api/v1/models`)).status).toBe(401);
    } finally {
      await served.close();
      rmSync(appDir, { recursive: true, force: true });
    }
  });
});

describe('the API document', () => {
  it('serves OpenAPI 3 made from the route schemas, and the docs page from bundled assets', async () => {
    const spec = await (await fetch(`${t.url}/api/openapi.json`)).json() as { openapi: string; paths: Record<string, Record<string, { security?: unknown[]; requestBody?: unknown }>> };
    expect(spec.openapi).toMatch(/^3\./);
    for (const path of ['/oauth/token', '/api/v1/datasets', '/api/v1/datasets/{name}/zip', '/api/v1/jobs', '/api/v1/jobs/{id}/events', '/api/v1/models/{id}/predict', '/health']) {
      expect(Object.keys(spec.paths), path).toContain(path);
    }
    expect(spec.paths['/api/v1/jobs'].post.requestBody).toBeDefined();
    expect(spec.paths['/health'].get.security).toEqual([]);
    // Every route but /health, sign-in and the token endpoints needs a token.
    const open = ['/health', '/oauth/token', '/oauth/revoke', '/api/v1/session'];
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, route] of Object.entries(methods)) {
        if (open.includes(path) && (path !== '/api/v1/session' || method === 'post')) continue;
        expect(route.security, `${method} ${path}`).toEqual(expect.arrayContaining([{ bearer: [] }]));
      }
    }
    const page = await fetch(`${t.url}/api/docs/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[a-z]/i); // no CDN
  });
});
