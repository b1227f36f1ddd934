/**
 * Accounts and tokens, kept in the store (tables `users` and `tokens`).
 *
 * - Passwords: scrypt (N 2^15, r 8, p 1, 16-byte salt, 32-byte key), stored as
 *   `scrypt$N$r$p$salt$key` (base64); checked with a constant-time comparison.
 * - Tokens: 32 random bytes (256 bits) as base64url behind a prefix that says what they are
 *   (`dsa_` access, `dsr_` refresh, `dsp_` personal). Only their SHA-256 is stored; a token is
 *   found by its hash and the hash is compared again in constant time. The token itself is shown
 *   once, to whoever created it, and never logged.
 * - Scopes: predict < train < admin; a token carries one, a user has the highest they may ask for.
 */
import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { UsageError } from '@descent/engine';
import { timestamp, type Executor, type Store } from '@descent/store';

export const SCOPES = ['predict', 'train', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export function scopeRank(scope: Scope): number {
  return SCOPES.indexOf(scope);
}

/** Whether a token with scope `has` may use a route that needs `needs`. */
export function allows(has: Scope, needs: Scope): boolean {
  return scopeRank(has) >= scopeRank(needs);
}

export type TokenKind = 'access' | 'refresh' | 'personal';
const PREFIX: Record<TokenKind, string> = { access: 'dsa_', refresh: 'dsr_', personal: 'dsp_' };
/** What a well-formed token looks like: a prefix and 43 base64url characters (32 bytes). */
export const TOKEN_FORMAT = /^ds[arp]_[A-Za-z0-9_-]{43}$/;
export const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/;

const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 };

function scrypt(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keyLength, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** A stored hash to compare against when the user does not exist, so both cases take the same time. */
let decoy: Promise<string> | undefined;

export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parts = (stored ?? (await (decoy ??= hashPassword('decoy password')))).split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  const key = await scrypt(password, salt, expected.length, { N, r, p, maxmem: 64 * 1024 * 1024 });
  return timingSafeEqual(key, expected) && stored !== null;
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function newToken(kind: TokenKind): string {
  return PREFIX[kind] + randomBytes(32).toString('base64url');
}

export interface TokenRecord {
  id: number;
  kind: TokenKind;
  name: string | null;
  scope: Scope;
  userId: number | null;
  userName: string | null;
  /** Milliseconds since the epoch, or null for a token that does not expire. */
  expiresAt: number | null;
  revoked: boolean;
}

export interface TokenInfo {
  id: number;
  kind: TokenKind;
  name: string | null;
  scope: Scope;
  user: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

export interface IssuedToken {
  id: number;
  token: string;
  scope: Scope;
  expiresAt: number | null;
}

/** "30d", "12h", "45m", "3600s" or "never" → seconds (null for never). */
export function parseDuration(text: string, flag = '--expires'): number | null {
  if (text === 'never') return null;
  const match = /^(\d{1,6})([smhd])$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) throw new UsageError(`${flag} ${text}: expected a duration such as 30d, 12h, 45m or 3600s, or "never"`);
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[match[2] as 's' | 'm' | 'h' | 'd'];
}

function isoOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function msOf(value: unknown): number | null {
  return value === null || value === undefined ? null : Date.parse(`${String(value).replace(' ', 'T')}Z`);
}

/** How long a verified token is trusted without asking the database again (revocations made elsewhere take this long). */
const CACHE_MS = 2000;
const CACHE_MAX = 10_000;

export class Accounts {
  private readonly cache = new Map<string, { record: TokenRecord | null; at: number }>();

  constructor(private readonly store: Store) {}

  // ---- users ----

  async addUser(name: string, password: string, scope: Scope): Promise<number> {
    if (!USER_NAME.test(name)) throw new UsageError(`user name ${JSON.stringify(name).slice(0, 60)}: use 1-100 letters, digits, '.', '_', '@' or '-', starting with a letter or digit`);
    if (password.length < 8) throw new UsageError('the password must be at least 8 characters');
    if (password.length > 1024) throw new UsageError('the password must be at most 1024 characters');
    const hash = await hashPassword(password);
    const existing = await this.store.driver.all('SELECT id FROM users WHERE name = ?', [name]);
    if (existing.length > 0) throw new UsageError(`user ${name} already exists`);
    return (await this.store.driver.run('INSERT INTO users (name, password_hash, scope, created_at) VALUES (?, ?, ?, ?)', [name, hash, scope, timestamp()])).lastId;
  }

  async listUsers(): Promise<Array<{ id: number; name: string; scope: Scope; created_at: string }>> {
    const rows = await this.store.driver.all<{ id: number; name: string; scope: Scope; created_at: string }>('SELECT id, name, scope, created_at FROM users ORDER BY id');
    return rows.map((r) => ({ id: Number(r.id), name: r.name, scope: r.scope, created_at: String(r.created_at) }));
  }

  /** The user if the password is right; the same work is done for unknown users. */
  async checkPassword(name: string, password: string): Promise<{ id: number; name: string; scope: Scope } | undefined> {
    const rows = await this.store.driver.all<{ id: number; name: string; scope: Scope; password_hash: string }>('SELECT id, name, scope, password_hash FROM users WHERE name = ?', [name]);
    const user = rows[0];
    const ok = await verifyPassword(password.slice(0, 1024), user?.password_hash ?? null);
    return ok && user ? { id: Number(user.id), name: user.name, scope: user.scope } : undefined;
  }

  // ---- tokens ----

  /** Creates a token; the returned `token` is the only time it exists outside its hash. */
  async issue(kind: TokenKind, scope: Scope, { userId = null, name = null, ttlSeconds = null, parentId = null, tx }: {
    userId?: number | null; name?: string | null; ttlSeconds?: number | null; parentId?: number | null; tx?: Executor;
  } = {}): Promise<IssuedToken> {
    const token = newToken(kind);
    const now = Date.now();
    const expiresAt = ttlSeconds === null ? null : now + ttlSeconds * 1000;
    const { lastId } = await (tx ?? this.store.driver).run(
      'INSERT INTO tokens (user_id, kind, name, scope, token_hash, parent_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [userId, kind, name, scope, tokenHash(token), parentId, timestamp(new Date(now)), expiresAt === null ? null : timestamp(new Date(expiresAt))],
    );
    return { id: lastId, token, scope, expiresAt };
  }

  /**
   * The token's record if it exists, is not revoked and has not expired; undefined otherwise.
   * Malformed tokens never reach the database.
   */
  async verify(token: string, kinds: readonly TokenKind[] = ['access', 'personal']): Promise<TokenRecord | undefined> {
    if (!TOKEN_FORMAT.test(token)) return undefined;
    const hash = tokenHash(token);
    const now = Date.now();
    let cached = this.cache.get(hash);
    if (!cached || now - cached.at > CACHE_MS) {
      cached = { record: await this.lookup(hash), at: now };
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(hash, cached);
    }
    const record = cached.record;
    if (!record || record.revoked || !kinds.includes(record.kind)) return undefined;
    if (record.expiresAt !== null && record.expiresAt <= now) return undefined;
    return record;
  }

  private async lookup(hash: string): Promise<TokenRecord | null> {
    const rows = await this.store.driver.all<Record<string, unknown>>(
      `SELECT t.id, t.kind, t.name, t.scope, t.user_id, t.token_hash, t.expires_at, t.revoked_at, u.name AS user_name
       FROM tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?`,
      [hash],
    );
    const row = rows[0];
    if (!row) return null;
    // Found by its hash; compare the whole hash again without an early exit.
    if (!timingSafeEqual(Buffer.from(String(row.token_hash), 'hex'), Buffer.from(hash, 'hex'))) return null;
    return {
      id: Number(row.id),
      kind: row.kind as TokenKind,
      name: row.name === null ? null : String(row.name),
      scope: row.scope as Scope,
      userId: row.user_id === null ? null : Number(row.user_id),
      userName: row.user_name === null || row.user_name === undefined ? null : String(row.user_name),
      expiresAt: msOf(row.expires_at),
      revoked: row.revoked_at !== null,
    };
  }

  /** Revokes a token and the tokens issued from it (a refresh token's access tokens); returns how many. */
  async revoke(id: number): Promise<number> {
    const now = timestamp();
    const { changes } = await this.store.driver.run('UPDATE tokens SET revoked_at = ? WHERE (id = ? OR parent_id = ?) AND revoked_at IS NULL', [now, id, id]);
    this.cache.clear();
    return changes;
  }

  /** Revokes a token given as its secret (OAuth revocation); unknown tokens are ignored. */
  async revokeSecret(token: string): Promise<void> {
    if (!TOKEN_FORMAT.test(token)) return;
    const record = await this.lookup(tokenHash(token));
    if (record) await this.revoke(record.id);
  }

  /**
   * Swaps a refresh token for a new access token and a new refresh token (the old one is revoked,
   * so each can be used once). Undefined when the refresh token is not valid.
   */
  async refresh(refreshToken: string, accessTtl: number, refreshTtl: number): Promise<{ access: IssuedToken; refresh: IssuedToken } | undefined> {
    const record = await this.verify(refreshToken, ['refresh']);
    if (!record) return undefined;
    return this.store.driver.transaction(async (tx) => {
      const { changes } = await tx.run('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [timestamp(), record.id]);
      if (changes !== 1) return undefined; // used twice at once: only one wins
      this.cache.clear();
      const refresh = await this.issue('refresh', record.scope, { userId: record.userId, ttlSeconds: refreshTtl, tx });
      const access = await this.issue('access', record.scope, { userId: record.userId, ttlSeconds: accessTtl, parentId: refresh.id, tx });
      return { access, refresh };
    });
  }

  async listTokens(userId?: number | null): Promise<TokenInfo[]> {
    const where = userId === undefined ? '' : userId === null ? 'WHERE t.user_id IS NULL' : 'WHERE t.user_id = ?';
    const rows = await this.store.driver.all<Record<string, unknown>>(
      `SELECT t.id, t.kind, t.name, t.scope, t.created_at, t.expires_at, t.revoked_at, u.name AS user_name
       FROM tokens t LEFT JOIN users u ON u.id = t.user_id ${where} ORDER BY t.id`,
      userId === undefined || userId === null ? [] : [userId],
    );
    return rows.map((r) => ({
      id: Number(r.id), kind: r.kind as TokenKind, name: r.name === null ? null : String(r.name), scope: r.scope as Scope,
      user: r.user_name === null || r.user_name === undefined ? null : String(r.user_name),
      created_at: String(r.created_at), expires_at: isoOrNull(r.expires_at), revoked_at: isoOrNull(r.revoked_at),
    }));
  }

  async tokenOwner(id: number): Promise<{ userId: number | null } | undefined> {
    const rows = await this.store.driver.all<{ user_id: number | null }>('SELECT user_id FROM tokens WHERE id = ?', [id]);
    return rows[0] ? { userId: rows[0].user_id === null ? null : Number(rows[0].user_id) } : undefined;
  }
}
