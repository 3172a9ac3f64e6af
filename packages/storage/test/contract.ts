/**
 * The BlobStore contract, run against every implementation (file.test.ts,
 * s3.test.ts). `makeStore` returns a fresh, empty store for each test.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { isImagoError } from '@imago/core';
import type { BlobStore } from '../src/index.js';

export type StoreFactory = () => Promise<BlobStore>;

export const MB = 1024 * 1024;

/** A stream of `size` pseudo-random bytes in 64 KiB chunks, plus the hash it will have. */
export function generated(size: number, failAfter?: number): { stream: Readable; sha256: string } {
  const chunk = 64 * 1024;
  const chunks: Buffer[] = [];
  const h = createHash('sha256');
  for (let off = 0; off < size; off += chunk) {
    const c = randomBytes(Math.min(chunk, size - off));
    chunks.push(c);
    h.update(c);
  }
  let i = 0;
  let sent = 0;
  const stream = new Readable({
    read() {
      if (failAfter !== undefined && sent >= failAfter) {
        this.destroy(new Error('client went away'));
        return;
      }
      const c = chunks[i++];
      if (!c) {
        this.push(null);
        return;
      }
      sent += c.length;
      this.push(c);
    },
  });
  return { stream, sha256: h.digest('hex') };
}

export async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function hashOf(r: Readable): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of r) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

async function listAll(store: BlobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const k of store.list(prefix)) out.push(k);
  return out.sort();
}

function assertCode(code: string) {
  return (e: unknown) => {
    assert.ok(isImagoError(e), `expected an ImagoError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

export function blobStoreContract(label: string, makeStore: StoreFactory): void {
  describe(`BlobStore contract: ${label}`, () => {
    const withStore = (fn: (s: BlobStore) => Promise<void>) => async () => {
      const store = await makeStore();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    };

    it('streams a 20 MB blob in and out with the right sha256 and size', withStore(async (store) => {
      const size = 20 * MB + 12345;
      const { stream, sha256 } = generated(size);
      const put = await store.put('studies/1/series/2/big.dcm', stream, { contentType: 'application/dicom' });
      assert.deepEqual(put, { key: 'studies/1/series/2/big.dcm', sha256, size });
      assert.deepEqual(await store.stat('studies/1/series/2/big.dcm'), { size });
      assert.deepEqual(await hashOf(await store.get('studies/1/series/2/big.dcm')), { sha256, size });
    }));

    it('stores a Buffer and reports the known SHA-256 of its bytes', withStore(async (store) => {
      const put = await store.put('hello.txt', Buffer.from('hello'));
      assert.equal(put.sha256, '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
      assert.equal(put.size, 5);
      assert.equal((await readAll(await store.get('hello.txt'))).toString(), 'hello');
    }));

    it('stores an empty blob', withStore(async (store) => {
      const put = await store.put('empty', Buffer.alloc(0));
      assert.equal(put.size, 0);
      assert.equal(put.sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      assert.deepEqual(await store.stat('empty'), { size: 0 });
      assert.equal((await readAll(await store.get('empty'))).length, 0);
    }));

    it('serves byte ranges (inclusive end, open end, end clamped to the size)', withStore(async (store) => {
      const data = randomBytes(100_000);
      await store.put('r', data);
      assert.deepEqual(await readAll(await store.get('r', { start: 10, end: 19 })), data.subarray(10, 20));
      // (A one-byte range at offset 0, bytes=0-0, would be the natural test,
      // but s3rver ignores an end of 0 and returns the whole object.)
      assert.deepEqual(await readAll(await store.get('r', { start: 3, end: 3 })), data.subarray(3, 4));
      assert.deepEqual(await readAll(await store.get('r', { start: 0, end: 2 })), data.subarray(0, 3));
      assert.deepEqual(await readAll(await store.get('r', { start: 99_990 })), data.subarray(99_990));
      assert.deepEqual(await readAll(await store.get('r', { start: 99_000, end: 1_000_000 })), data.subarray(99_000));
      await assert.rejects(store.get('r', { start: 100_000 }), assertCode('badRequest'));
      await assert.rejects(store.get('r', { start: 5, end: 4 }), assertCode('badRequest'));
      await assert.rejects(store.get('r', { start: -1 }), assertCode('badRequest'));
    }));

    it('answers exists and stat for present and missing keys', withStore(async (store) => {
      assert.equal(await store.exists('a/b'), false);
      assert.equal(await store.stat('a/b'), null);
      await store.put('a/b', Buffer.from('xyz'));
      assert.equal(await store.exists('a/b'), true);
      assert.deepEqual(await store.stat('a/b'), { size: 3 });
      assert.equal(await store.exists('a'), false, 'a key prefix is not itself a blob');
    }));

    it('get of a missing key throws notFound', withStore(async (store) => {
      await assert.rejects(store.get('no/such/key'), assertCode('notFound'));
      await assert.rejects(store.get('no/such/key', { start: 0, end: 1 }), assertCode('notFound'));
    }));

    it('delete is idempotent and reports whether the blob existed', withStore(async (store) => {
      await store.put('d/x', Buffer.from('1'));
      assert.equal(await store.delete('d/x'), true);
      assert.equal(await store.exists('d/x'), false);
      assert.equal(await store.delete('d/x'), false);
      assert.equal(await store.delete('never/was'), false);
      await assert.rejects(store.get('d/x'), assertCode('notFound'));
      // The key can be reused after a delete.
      await store.put('d/x', Buffer.from('2'));
      assert.equal((await readAll(await store.get('d/x'))).toString(), '2');
    }));

    it('overwrites an existing key', withStore(async (store) => {
      await store.put('k', Buffer.from('first version'));
      const put = await store.put('k', Buffer.from('second'));
      assert.equal(put.size, 6);
      assert.equal((await readAll(await store.get('k'))).toString(), 'second');
      assert.deepEqual(await listAll(store, ''), ['k']);
    }));

    it('keeps a key and a longer key below it apart ("a" and "a/b")', withStore(async (store) => {
      await store.put('a', Buffer.from('A'));
      await store.put('a/b', Buffer.from('AB'));
      await store.put('a.b', Buffer.from('A.B'));
      assert.equal((await readAll(await store.get('a'))).toString(), 'A');
      assert.equal((await readAll(await store.get('a/b'))).toString(), 'AB');
      assert.equal((await readAll(await store.get('a.b'))).toString(), 'A.B');
      assert.deepEqual(await listAll(store, 'a'), ['a', 'a.b', 'a/b']);
    }));

    it('lists keys by plain string prefix', withStore(async (store) => {
      const keys = ['p/1', 'p/2', 'p/q/3', 'pq/4', 'x/5', 'p/ünï cödé %41.dcm'];
      for (const k of keys) await store.put(k, Buffer.from(k));
      assert.deepEqual(await listAll(store, 'p/'), ['p/1', 'p/2', 'p/q/3', 'p/ünï cödé %41.dcm']);
      assert.deepEqual(await listAll(store, 'p'), ['p/1', 'p/2', 'p/q/3', 'p/ünï cödé %41.dcm', 'pq/4']);
      assert.deepEqual(await listAll(store, 'p/q/'), ['p/q/3']);
      assert.deepEqual(await listAll(store, ''), [...keys].sort());
      assert.deepEqual(await listAll(store, 'nothing/'), []);
      await store.delete('p/q/3');
      assert.deepEqual(await listAll(store, 'p/q'), []);
      assert.equal((await readAll(await store.get('p/ünï cödé %41.dcm'))).toString(), 'p/ünï cödé %41.dcm');
    }));

    it('accepts a matching expectedSha256 (any case)', withStore(async (store) => {
      const data = randomBytes(1000);
      const sha = createHash('sha256').update(data).digest('hex');
      const put = await store.put('ok', data, { expectedSha256: sha.toUpperCase() });
      assert.equal(put.sha256, sha);
      assert.equal(await store.exists('ok'), true);
    }));

    it('expectedSha256 mismatch throws unprocessable and leaves nothing behind', withStore(async (store) => {
      const { stream } = generated(6 * MB);
      await assert.rejects(store.put('bad/blob', stream, { expectedSha256: 'a'.repeat(64) }), assertCode('unprocessable'));
      assert.equal(await store.exists('bad/blob'), false);
      assert.deepEqual(await listAll(store, ''), []);
      await assert.rejects(store.put('bad/blob', Buffer.from('x'), { expectedSha256: 'not-hex' }), assertCode('badRequest'));
    }));

    it('a put whose source stream fails leaves no blob', withStore(async (store) => {
      const { stream } = generated(12 * MB, 6 * MB);
      await assert.rejects(store.put('broken', stream), /client went away/);
      assert.equal(await store.exists('broken'), false);
      assert.deepEqual(await listAll(store, ''), []);
    }));

    it('rejects invalid keys with badRequest on every operation', withStore(async (store) => {
      const bad = ['', '../etc/passwd', 'a/../b', '..', '.', 'a/./b', '/abs/path', 'a//b', 'a/', 'nul\u0000byte', 'new\nline', 'back\\slash', 'x'.repeat(513)];
      for (const k of bad) {
        await assert.rejects(store.put(k, Buffer.from('x')), assertCode('badRequest'), `put ${JSON.stringify(k)}`);
        await assert.rejects(store.get(k), assertCode('badRequest'), `get ${JSON.stringify(k)}`);
        await assert.rejects(store.stat(k), assertCode('badRequest'), `stat ${JSON.stringify(k)}`);
        await assert.rejects(store.exists(k), assertCode('badRequest'), `exists ${JSON.stringify(k)}`);
        await assert.rejects(store.delete(k), assertCode('badRequest'), `delete ${JSON.stringify(k)}`);
      }
      assert.deepEqual(await listAll(store, ''), []);
      // Dots inside a segment are fine.
      await store.put('.hidden/..x/file..dcm', Buffer.from('ok'));
      assert.deepEqual(await listAll(store, ''), ['.hidden/..x/file..dcm']);
    }));
  });
}
