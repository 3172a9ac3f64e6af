import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '@imago/testkit';
import { FileBlobStore, openBlobStore } from '../src/index.js';
import { MB, blobStoreContract, generated, readAll } from './contract.js';

blobStoreContract('file', async () => openBlobStore(`file:${tempDir('imago-blobs-')}`, undefined, { fsync: true }));

describe('FileBlobStore specifics', () => {
  it('an aborted write leaves no blob, no temp file, and keeps the previous version', async () => {
    const root = tempDir('imago-blobs-');
    const store = new FileBlobStore(root);
    await store.put('inst/1', Buffer.from('old'));
    const { stream } = generated(8 * MB, 3 * MB);
    await assert.rejects(store.put('inst/1', stream), /client went away/);
    const { stream: s2 } = generated(8 * MB, 1 * MB);
    await assert.rejects(store.put('inst/2', s2), /client went away/);
    assert.equal((await readAll(await store.get('inst/1'))).toString(), 'old');
    assert.equal(await store.exists('inst/2'), false);
    assert.deepEqual(readdirSync(join(root, '.tmp')), []);
  });

  it('a sha mismatch leaves no temp file and keeps the previous version', async () => {
    const root = tempDir('imago-blobs-');
    const store = new FileBlobStore(root, { fsync: false });
    await store.put('k', Buffer.from('old'));
    await assert.rejects(store.put('k', Buffer.from('new'), { expectedSha256: '0'.repeat(64) }));
    assert.equal((await readAll(await store.get('k'))).toString(), 'old');
    assert.deepEqual(readdirSync(join(root, '.tmp')), []);
  });

  it('a write in progress is not visible; a reader of the old version is not disturbed by an overwrite', async () => {
    const store = new FileBlobStore(tempDir('imago-blobs-'), { fsync: false });
    const old = Buffer.alloc(4 * MB, 1);
    await store.put('k', old);
    const reader = await store.get('k');
    // Start an overwrite that stalls half-way.
    const { stream, sha256 } = generated(4 * MB);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let n = 0;
    const slow = stream.map(async (c: Buffer) => {
      if (++n === 20) await gate;
      return c;
    });
    const putting = store.put('k', slow);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await store.stat('k'), { size: 4 * MB }, 'old version still visible mid-write');
    release();
    assert.equal((await putting).sha256, sha256);
    assert.deepEqual(await readAll(reader), old, 'the earlier reader still sees the old bytes');
  });

  it('blobs live in a sharded tree under the root, never at the key path', async () => {
    const root = tempDir('imago-blobs-');
    const store = new FileBlobStore(root, { fsync: false });
    await store.put('a/b.dcm', Buffer.from('x'));
    const p = store.pathFor('a/b.dcm');
    assert.match(p.slice(root.length), /^\/[0-9a-f]{2}\/[0-9a-f]{2}\/a\/b%2Edcm\.b$/);
    assert.deepEqual(readdirSync(root).filter((d) => d !== '.tmp').length, 1);
  });

  it('delete removes the directories a key created', async () => {
    const root = tempDir('imago-blobs-');
    const store = new FileBlobStore(root, { fsync: false });
    await store.put('deep/er/key', Buffer.from('x'));
    const shard = store.pathFor('deep/er/key').slice(root.length + 1).split('/').slice(0, 2).join('/');
    await store.delete('deep/er/key');
    assert.deepEqual(readdirSync(join(root, shard)), []);
  });

  it('sweeps stale temp files left by a crash, but not fresh ones', async () => {
    const root = tempDir('imago-blobs-');
    await mkdir(join(root, '.tmp'), { recursive: true });
    await writeFile(join(root, '.tmp', 'stale.part'), 'x');
    await writeFile(join(root, '.tmp', 'fresh.part'), 'x');
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(join(root, '.tmp', 'stale.part'), old, old);
    const store = new FileBlobStore(root, { sweepTempOlderThanMs: 0 });
    assert.equal(await store.sweepTemp(60 * 60 * 1000), 1);
    assert.deepEqual(readdirSync(join(root, '.tmp')), ['fresh.part']);
  });

  it('openBlobStore rejects unknown schemes', () => {
    assert.throws(() => openBlobStore('ftp://x'), /unsupported scheme/);
    assert.throws(() => openBlobStore('file:'), /needs a path/);
  });
});
