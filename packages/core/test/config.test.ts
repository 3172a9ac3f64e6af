import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig, redactConfig } from '@imago/core';
import { tempDir } from '@imago/testkit';


test('defaults give the embedded deployment', () => {
  const c = loadConfig({ env: {} });
  assert.equal(c.db.url, 'sqlite:./data/imago.db');
  assert.equal(c.storage.url, 'file:./data/blobs');
  assert.equal(c.http.port, 8080);
  assert.equal(c.parts.site, true);
});

test('IMAGO_* environment variables map onto nested keys with types', () => {
  const c = loadConfig({ env: { IMAGO_HTTP__PORT: '9999', IMAGO_DB__URL: 'postgres://u:p@h/db', IMAGO_SITE__ALLOWED_CALLING_AE_TITLES: '["PACS1","PACS2"]', IMAGO_AUTH__COOKIE_SECURE: 'true' } });
  assert.equal(c.http.port, 9999);
  assert.equal(c.db.url, 'postgres://u:p@h/db');
  assert.deepEqual(c.site.allowedCallingAeTitles, ['PACS1', 'PACS2']);
  assert.equal(c.auth.cookieSecure, true);
});

test('a bad value fails fast and names the key and its source', () => {
  assert.throws(() => loadConfig({ env: { IMAGO_HTTP__PORT: 'eighty' } }), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /http\.port/);
    assert.match(e.message, /IMAGO_HTTP__PORT/);
    return true;
  });
});

test('an unknown key is refused by name', () => {
  assert.throws(() => loadConfig({ env: { IMAGO_HTTP__PROT: '80' } }), /http\.prot: unknown key/);
});

test('the config file is read, and env overrides it', () => {
  const dir = tempDir();
  const f = join(dir, 'imago.config.json');
  writeFileSync(f, JSON.stringify({ http: { port: 7000, host: '0.0.0.0' }, log: { level: 'warn' } }));
  const c = loadConfig({ file: f, env: { IMAGO_HTTP__PORT: '7001' } });
  assert.equal(c.http.port, 7001);
  assert.equal(c.http.host, '0.0.0.0');
  assert.equal(c.log.level, 'warn');
});

test('a named config file that does not exist, or is not JSON, is an error', () => {
  const dir = tempDir();
  assert.throws(() => loadConfig({ file: join(dir, 'missing.json'), env: { IMAGO_CONFIG: 'x' } }), /not found/);
  const f = join(dir, 'bad.json');
  writeFileSync(f, '{ nope');
  assert.throws(() => loadConfig({ file: f, env: {} }), /cannot read/);
});

test('redaction hides secrets and URL passwords', () => {
  const c = loadConfig({ env: { IMAGO_SITE__SECRET: 'topsecret', IMAGO_DB__URL: 'postgres://imago:hunter2@db/imago', IMAGO_SITE__HUB_TOKEN: 'imt_x' } });
  const s = JSON.stringify(redactConfig(c));
  assert.ok(!s.includes('topsecret'));
  assert.ok(!s.includes('hunter2'));
  assert.ok(!s.includes('imt_x'));
  assert.match(s, /\[redacted\]/);
});
