import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClassifiedError } from '@imago/core';
import { freePort, tempDir } from '@imago/testkit';
import { HubClient, canonicalJson } from '../src/index.js';

// A tiny fake hub, for the failure classification only (the end-to-end tests use the real hub).
async function fakeHub(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; close(): Promise<void> }> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => { s.closeAllConnections(); s.close(() => r()); }) };
}

const cls = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof ClassifiedError, String(e));
    return e.failureClass;
  }
};

test('uplink failure classification: 5xx/refused transient, 4xx permanent, lost mid-request ambiguous, timeout ambiguous', async () => {
  const dir = tempDir();
  const file = join(dir, 'x.dcm');
  writeFileSync(file, Buffer.alloc(256 * 1024, 7));
  const sha = 'a'.repeat(64);
  const mk = (url: string, timeoutMs = 5000) => new HubClient({ hubUrl: url, token: 't', site: 'DEMO1', timeoutMs });

  const h500 = await fakeHub((req, res) => req.resume().on('end', () => res.writeHead(503).end('{"message":"busy"}')));
  assert.equal(await cls(mk(h500.url).putInstance(sha, file, 256 * 1024)), 'transient');
  await h500.close();

  const h422 = await fakeHub((req, res) => req.resume().on('end', () => res.writeHead(422).end('{"message":"not de-identified"}')));
  assert.equal(await cls(mk(h422.url).putInstance(sha, file, 256 * 1024)), 'permanent');
  await h422.close();

  const port = await freePort();
  assert.equal(await cls(mk(`http://127.0.0.1:${port}`).putInstance(sha, file, 256 * 1024)), 'transient', 'connection refused: nothing was sent');

  const hDrop = await fakeHub((req) => {
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > 64 * 1024) req.socket.destroy();
    });
  });
  assert.equal(await cls(mk(hDrop.url).putInstance(sha, file, 256 * 1024)), 'ambiguous', 'connection lost mid-request');
  await hDrop.close();

  const hSlow = await fakeHub((req) => req.resume());
  assert.equal(await cls(mk(hSlow.url, 300).putInstance(sha, file, 256 * 1024)), 'ambiguous', 'no answer in time');
  await hSlow.close();

  const hOk = await fakeHub((req, res) => {
    if (req.method === 'GET') return void res.writeHead(req.url!.endsWith(sha) ? 200 : 404).end('{}');
    req.resume().on('end', () => res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ sha256: sha, status: 'stored', instanceKey: 'k' })));
  });
  assert.deepEqual(await mk(hOk.url).putInstance(sha, file, 256 * 1024), { status: 'stored', instanceKey: 'k' });
  assert.equal(await mk(hOk.url).hasInstance(sha), true);
  assert.equal(await mk(hOk.url).hasInstance('b'.repeat(64)), false);
  await hOk.close();
});

test('canonical JSON sorts keys recursively (shared with the hub)', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
});
