import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isRetryableTxError, migrate, openDatabase, parseDbUrl, sql } from '@imago/db';
import { dbBackends } from '@imago/testkit';

test('db urls are parsed, and bad ones refused', () => {
  assert.deepEqual(parseDbUrl('sqlite:./x.db'), { dialect: 'sqlite', path: './x.db' });
  assert.equal(parseDbUrl('postgres://a@b/c').dialect, 'postgres');
  assert.throws(() => parseDbUrl('mysql://x'), /unsupported scheme/);
  assert.throws(() => parseDbUrl('sqlite:'), /needs a path/);
});

for (const backend of dbBackends()) {
  describe(`db on ${backend.name}`, () => {
    test('migrations apply once and are idempotent', async () => {
      const h = await openDatabase(await backend.url());
      try {
        const tables = backend.name === 'sqlite'
          ? await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type='table'`.execute(h.db)
          : await sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema='public'`.execute(h.db);
        const names = tables.rows.map((r) => r.name);
        for (const t of ['users', 'organisations', 'role_grants', 'sessions', 'api_tokens', 'audit_events', 'jobs']) assert.ok(names.includes(t), `missing ${t}`);
        assert.deepEqual(await migrate(h), []);
        if (backend.name === 'sqlite') {
          const mode = await sql<{ journal_mode: string }>`PRAGMA journal_mode`.execute(h.db);
          assert.equal(mode.rows[0]!.journal_mode, 'wal');
        }
      } finally {
        await h.close();
      }
    });

    test('a failed transaction rolls back everything', async () => {
      const h = await openDatabase(await backend.url());
      try {
        await assert.rejects(
          h.transaction(async (trx) => {
            await trx.insertInto('organisations').values({ id: 'o1', code: 'A', name: 'A', kind: 'hospital', created_at: 'now' }).execute();
            await trx.insertInto('organisations').values({ id: 'o2', code: 'A', name: 'dup', kind: 'hospital', created_at: 'now' }).execute();
          }),
        );
        const n = await h.db.selectFrom('organisations').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
        assert.equal(Number(n.n), 0);
      } finally {
        await h.close();
      }
    });

    test('transactions retry on serialization failure / busy', async () => {
      const h = await openDatabase(await backend.url());
      try {
        let attempts = 0;
        const code = backend.name === 'sqlite' ? 'SQLITE_BUSY' : '40001';
        const r = await h.transaction(async (trx) => {
          attempts++;
          await trx.insertInto('organisations').values({ id: `o${attempts}`, code: `C${attempts}`, name: 'x', kind: 'hospital', created_at: 'now' }).execute();
          if (attempts < 3) throw Object.assign(new Error('conflict'), { code });
          return 'done';
        });
        assert.equal(r, 'done');
        assert.equal(attempts, 3);
        // Only the successful attempt's row survives.
        const rows = await h.db.selectFrom('organisations').select('code').execute();
        assert.deepEqual(rows.map((x) => x.code), ['C3']);
        // Non-retryable errors are not retried.
        let n = 0;
        await assert.rejects(h.transaction(async () => {
          n++;
          throw new Error('boom');
        }), /boom/);
        assert.equal(n, 1);
      } finally {
        await h.close();
      }
    });
  });
}

test('SQLite busy from a second process-level connection is retried to success', async () => {
  const url = await dbBackends()[0]!.url();
  const a = await openDatabase(url);
  const b = await openDatabase(url);
  try {
    // A holds the write lock across an await. better-sqlite3 is synchronous, so
    // B's insert waits out busy_timeout, gets SQLITE_BUSY, and the transaction
    // wrapper retries it after A has committed. Both rows land.
    const p1 = a.transaction(async (trx) => {
      await trx.insertInto('organisations').values({ id: 'a', code: 'A', name: 'a', kind: 'hospital', created_at: 'now' }).execute();
      await new Promise((r) => setTimeout(r, 200));
    });
    await new Promise((r) => setTimeout(r, 20));
    const p2 = b.transaction(async (trx) => {
      await trx.insertInto('organisations').values({ id: 'b', code: 'B', name: 'b', kind: 'hospital', created_at: 'now' }).execute();
    });
    await Promise.all([p1, p2]);
    const rows = await a.db.selectFrom('organisations').select('code').orderBy('code').execute();
    assert.deepEqual(rows.map((r) => r.code), ['A', 'B']);
    assert.equal(isRetryableTxError(Object.assign(new Error(), { code: 'SQLITE_BUSY' })), true);
    assert.equal(isRetryableTxError(new Error()), false);
  } finally {
    await a.close();
    await b.close();
  }
});
