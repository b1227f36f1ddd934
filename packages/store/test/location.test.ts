import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '@descent/engine';
import { parseLocation, redact } from '../src/index.js';

describe('--db values', () => {
  it('reads SQLite paths and MariaDB URLs', () => {
    expect(parseLocation('descent.db', { cwd: '/w' })).toEqual({ kind: 'sqlite', file: '/w/descent.db', display: 'descent.db' });
    expect(parseLocation('sqlite:data/x.db', { cwd: '/w' })).toMatchObject({ kind: 'sqlite', file: '/w/data/x.db' });
    expect(parseLocation('mariadb://ann:s%40cret@db.example:3307/images')).toEqual({
      kind: 'mariadb', host: 'db.example', port: 3307, user: 'ann', password: 's@cret', database: 'images', display: 'mariadb://ann:***@db.example:3307/images',
    });
    expect(parseLocation('mariadb://ann@localhost/images?socket=/run/mysqld/mysqld.sock')).toMatchObject({ port: 3306, password: '', socket: '/run/mysqld/mysqld.sock' });
  });

  it('refuses what it cannot use, in one line, without the password', () => {
    for (const [value, message] of [
      ['mariadb://ann:pw@host:3306/', /no database name/],
      ['mariadb://:pw@host/db', /no user name/],
      ['mariadb://ann:pw@host/db?ssl=1', /unknown option "ssl"/],
      ['postgres://ann:pw@host/db', /unsupported scheme "postgres:"/],
      ['mariadb://ann:pw@host:99999/db', /not a valid URL/],
      ['', /expected a SQLite file/],
    ] as const) {
      const error = (() => {
        try {
          parseLocation(value);
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(error, value).toBeInstanceOf(UsageError);
      expect(error!.message).toMatch(message);
      expect(error!.message).not.toContain(':pw@');
    }
  });

  it('never shows a password and never throws anything but a UsageError (property)', () => {
    const part = fc.string({ minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(part, part, fc.string({ maxLength: 10 }), fc.integer({ min: 1, max: 65535 }), (user, secret, database, port) => {
        const password = `pw${secret}`;
        const url = `mariadb://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
        try {
          const location = parseLocation(url);
          expect(location).toMatchObject({ kind: 'mariadb', user, password, database, port });
          expect(location.display).not.toContain(encodeURIComponent(password));
        } catch (e) {
          expect(e).toBeInstanceOf(UsageError);
          expect((e as Error).message).not.toContain(`:${encodeURIComponent(password)}@`);
          expect((e as Error).message).not.toContain('\n');
        }
      }),
      { seed: 7, numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }).map((s) => `mariadb://u:p@h/${s}`)), (value) => {
        try {
          expect(parseLocation(value).display).not.toMatch(/[\n\r]/);
        } catch (e) {
          expect(e).toBeInstanceOf(UsageError);
          expect((e as Error).message).not.toMatch(/[\n\r]/);
        }
        expect(redact(value).length).toBeLessThanOrEqual(value.length + 3);
      }),
      { seed: 8, numRuns: 500 },
    );
  });
});
