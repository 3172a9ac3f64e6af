import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { freePort, tempDir } from '@imago/testkit';
import { S3BlobStore, openBlobStore, parseS3Url, type S3Options } from '../src/index.js';
import { MB, blobStoreContract, generated, readAll } from './contract.js';

const BUCKET = 'imago-test';
let server: S3rver | undefined;
let s3opts: S3Options;

before(async () => {
  const port = await freePort();
  server = new S3rver({ address: '127.0.0.1', port, silent: true, directory: tempDir('imago-s3rver-'), configureBuckets: [{ name: BUCKET }] });
  await server.run();
  s3opts = { endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true };
});

after(async () => {
  await server?.close();
});

// Each test gets its own prefix in the shared bucket: an empty store.
let n = 0;
const prefixUrl = () => `s3://${BUCKET}/run-${process.pid}-${n++}/blobs`;

blobStoreContract('s3 (s3rver)', async () => openBlobStore(prefixUrl(), s3opts, { partSize: 5 * MB }));

describe('S3BlobStore specifics', () => {
  it('parses s3:// URLs', () => {
    assert.deepEqual(parseS3Url('s3://bucket'), { bucket: 'bucket', prefix: '' });
    assert.deepEqual(parseS3Url('s3://bucket/'), { bucket: 'bucket', prefix: '' });
    assert.deepEqual(parseS3Url('s3://bucket/a/b'), { bucket: 'bucket', prefix: 'a/b/' });
    assert.deepEqual(parseS3Url('s3://bucket/a/b/'), { bucket: 'bucket', prefix: 'a/b/' });
    assert.throws(() => parseS3Url('s3://B_ad'), /invalid S3 bucket/);
  });

  it('keeps objects under its prefix and lists only those', async () => {
    const a = openBlobStore(prefixUrl(), s3opts) as S3BlobStore;
    const b = openBlobStore(prefixUrl(), s3opts) as S3BlobStore;
    try {
      await a.put('x/1', Buffer.from('a'));
      await b.put('x/1', Buffer.from('b'));
      const raw = await a.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: a.prefix }));
      assert.deepEqual(raw.Contents?.map((o) => o.Key), [`${a.prefix}x/1`]);
      assert.equal((await readAll(await a.get('x/1'))).toString(), 'a');
      assert.equal((await readAll(await b.get('x/1'))).toString(), 'b');
      const keys: string[] = [];
      for await (const k of a.list('')) keys.push(k);
      assert.deepEqual(keys, ['x/1']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a failed multipart upload is aborted: no object, and AbortMultipartUpload is sent', async () => {
    const store = openBlobStore(prefixUrl(), s3opts, { partSize: 5 * MB }) as S3BlobStore;
    // s3rver implements neither AbortMultipartUpload nor ListMultipartUploads,
    // so record the commands the client sends instead of asking the server.
    const sent: string[] = [];
    store.client.middlewareStack.add((next, ctx) => (args) => {
      sent.push(String(ctx.commandName));
      return next(args);
    }, { step: 'initialize' });
    try {
      const { stream } = generated(20 * MB, 11 * MB);
      await assert.rejects(store.put('mp/broken', stream), /client went away/);
      assert.equal(await store.exists('mp/broken'), false);
      assert.ok(sent.includes('UploadPartCommand'), `multipart was used: ${sent.join(',')}`);
      assert.ok(sent.includes('AbortMultipartUploadCommand'), `abort was sent: ${sent.join(',')}`);
      assert.ok(!sent.includes('CompleteMultipartUploadCommand'));
    } finally {
      await store.close();
    }
  });

  it('an unreachable endpoint fails the put (and is not reported as notFound)', async () => {
    const port = await freePort();
    const store = openBlobStore(prefixUrl(), { ...s3opts, endpoint: `http://127.0.0.1:${port}` });
    try {
      await assert.rejects(store.put('k', randomBytes(10)), (e: unknown) => (e as { code?: string }).code !== 'notFound');
    } finally {
      await store.close();
    }
  });
});
