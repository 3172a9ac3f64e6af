import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { badRequest, notFound, unprocessable } from '@imago/core';
import { HashingStream, normaliseSha256, validateKey, validatePrefix, validateRange } from './keys.js';
import type { BlobStore, ByteRange, PutOptions, PutResult } from './types.js';

export interface FileBlobStoreOptions {
  /**
   * fsync each blob (and its directory) before a put resolves, so that a
   * stored blob survives power loss. Default true; turn off only for tests
   * and scratch data.
   */
  fsync?: boolean;
  /** Remove temp files older than this at open (leftovers of crashed writes). Default 1 hour; 0 disables. */
  sweepTempOlderThanMs?: number;
}

const TMP_DIR = '.tmp';
const BLOB_SUFFIX = '.b';
const MAX_SEGMENT_BYTES = 250;

/**
 * Path segments are percent-encoded (and '.' too), so an encoded segment never
 * contains '.', never is '.'/'..', and the '.b' suffix that marks a blob file
 * cannot be confused with a directory made for a longer key: keys `a` and
 * `a/b` live at `…/a.b` and `…/a/b.b`.
 */
function encodeSegment(s: string): string {
  const e = encodeURIComponent(s).replace(/\./g, '%2E');
  if (Buffer.byteLength(e) > MAX_SEGMENT_BYTES) throw badRequest('blob key has a path segment that is too long');
  return e;
}

/**
 * `file:` blob store. Layout: ROOT/ab/cd/<encoded key segments>.b, where
 * ab/cd are the first hex digits of sha256(key) (spreads keys over 65536
 * directories whatever their shape). Writes go to ROOT/.tmp/ first (same
 * filesystem) and are renamed into place, so a reader sees either the old
 * blob, the new one, or nothing — never a partial file.
 */
export class FileBlobStore implements BlobStore {
  readonly url: string;
  readonly root: string;
  private readonly fsync: boolean;
  private readonly tmp: string;
  private tmpReady: Promise<void> | undefined;

  constructor(root: string, opts: FileBlobStoreOptions = {}) {
    if (!root) throw new Error('storage.url: file: needs a path, e.g. file:./data/blobs');
    this.root = resolve(root);
    this.url = `file:${root}`;
    this.fsync = opts.fsync ?? true;
    this.tmp = join(this.root, TMP_DIR);
    const sweepMs = opts.sweepTempOlderThanMs ?? 60 * 60 * 1000;
    if (sweepMs > 0) void this.sweepTemp(sweepMs).catch(() => undefined);
  }

  /** Absolute path of the file holding `key` (whether or not it exists). */
  pathFor(key: string): string {
    validateKey(key);
    const h = createHash('sha256').update(key).digest('hex');
    const segs = key.split('/').map(encodeSegment);
    segs[segs.length - 1] += BLOB_SUFFIX;
    return join(this.root, h.slice(0, 2), h.slice(2, 4), ...segs);
  }

  async put(key: string, body: Readable | Buffer, opts: PutOptions = {}): Promise<PutResult> {
    const target = this.pathFor(key);
    const expected = normaliseSha256(opts.expectedSha256);
    await (this.tmpReady ??= mkdir(this.tmp, { recursive: true }).then(() => undefined));
    const tmpPath = join(this.tmp, `${randomBytes(12).toString('hex')}.part`);
    const hasher = new HashingStream();
    try {
      const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
      await pipeline(source, hasher, createWriteStream(tmpPath, { flags: 'wx', mode: 0o640 }));
      if (expected !== undefined && hasher.sha256 !== expected) {
        throw unprocessable('blob content does not match the expected SHA-256', { detail: { key, expectedSha256: expected, sha256: hasher.sha256 } });
      }
      if (this.fsync) await fsyncPath(tmpPath);
      await this.moveIntoPlace(tmpPath, target);
    } catch (e) {
      await unlink(tmpPath).catch(() => undefined);
      throw e;
    }
    return { key, sha256: hasher.sha256, size: hasher.bytes };
  }

  private async moveIntoPlace(tmpPath: string, target: string): Promise<void> {
    const dir = target.slice(0, target.lastIndexOf(sep));
    // A concurrent delete may remove the (empty) directory between mkdir and
    // rename; try again a few times.
    for (let attempt = 0; ; attempt++) {
      await mkdir(dir, { recursive: true });
      try {
        await rename(tmpPath, target);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw e;
      }
    }
    if (this.fsync) await fsyncPath(dir);
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const path = this.pathFor(key);
    validateRange(range);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`blob not found: ${key}`);
      throw e;
    }
    // Stream from the open descriptor: a concurrent overwrite (rename) or
    // delete does not affect a read that has started.
    try {
      if (range) {
        const { size } = await fh.stat();
        if (range.start >= size) throw badRequest(`range start ${range.start} is beyond the end of the blob (${size} bytes)`);
        const end = Math.min(range.end ?? size - 1, size - 1);
        return fh.createReadStream({ start: range.start, end });
      }
      return fh.createReadStream();
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async stat(key: string): Promise<{ size: number } | null> {
    try {
      const st = await stat(this.pathFor(key));
      return { size: st.size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async delete(key: string): Promise<boolean> {
    const path = this.pathFor(key);
    try {
      await unlink(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    // Best effort: remove directories the key's segments created, up to (not
    // including) the shard directories. rmdir fails on non-empty dirs, which
    // is what we want.
    const shardDepth = this.root.split(sep).length + 2;
    let dir = path.slice(0, path.lastIndexOf(sep));
    while (dir.split(sep).length > shardDepth) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
      dir = dir.slice(0, dir.lastIndexOf(sep));
    }
    return true;
  }

  async *list(prefix: string): AsyncIterable<string> {
    validatePrefix(prefix);
    for (const a of await readdirOrEmpty(this.root)) {
      if (!/^[0-9a-f]{2}$/.test(a)) continue;
      for (const b of await readdirOrEmpty(join(this.root, a))) {
        if (!/^[0-9a-f]{2}$/.test(b)) continue;
        for await (const key of walkKeys(join(this.root, a, b), [])) {
          if (key.startsWith(prefix)) yield key;
        }
      }
    }
  }

  /** Delete temp files (from crashed or aborted writes) older than `olderThanMs`. Returns how many were removed. */
  async sweepTemp(olderThanMs: number): Promise<number> {
    let n = 0;
    const cutoff = Date.now() - olderThanMs;
    for (const f of await readdirOrEmpty(this.tmp)) {
      const p = join(this.tmp, f);
      try {
        if ((await stat(p)).mtimeMs < cutoff) {
          await unlink(p);
          n++;
        }
      } catch {
        /* raced with its writer; ignore */
      }
    }
    return n;
  }

  async close(): Promise<void> {
    /* nothing to release */
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

async function* walkKeys(dir: string, segs: string[]): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for (const ent of entries) {
    if (ent.isDirectory()) {
      yield* walkKeys(join(dir, ent.name), [...segs, decodeURIComponent(ent.name)]);
    } else if (ent.isFile() && ent.name.endsWith(BLOB_SUFFIX)) {
      yield [...segs, decodeURIComponent(ent.name.slice(0, -BLOB_SUFFIX.length))].join('/');
    }
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
