import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClassifiedError, classifyFailure, dicomKey, ERROR_CODES, httpStatusFor, ImagoError, instanceKey, isValidUid, newId, notFound, unavailable } from '@imago/core';

test('every error code maps to one HTTP status', () => {
  for (const [code, status] of Object.entries(ERROR_CODES)) assert.equal(httpStatusFor(code as keyof typeof ERROR_CODES), status);
  const e = notFound('no such study');
  assert.equal(httpStatusFor(e.code), 404);
  assert.deepEqual(e.toJSON(), { error: 'notFound', message: 'no such study' });
});

test('failures are classified before retrying', () => {
  assert.equal(classifyFailure(unavailable('hub down')), 'transient');
  assert.equal(classifyFailure(new ImagoError('unprocessable', 'bad')), 'permanent');
  assert.equal(classifyFailure(Object.assign(new Error('reset'), { code: 'ECONNRESET' })), 'ambiguous');
  assert.equal(classifyFailure(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), 'transient');
  assert.equal(classifyFailure(new ClassifiedError('permanent', 'x')), 'permanent');
});

test('DICOM keys are deterministic and validate UIDs', () => {
  const a = instanceKey('1.2.3', '1.2.3.4', '1.2.3.4.5');
  assert.equal(a, instanceKey('1.2.3', '1.2.3.4', '1.2.3.4.5'));
  assert.notEqual(a, instanceKey('1.2.3', '1.2.3.4', '1.2.3.4.6'));
  assert.match(a, /^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/);
  assert.throws(() => dicomKey('1.02.3'));
  assert.equal(isValidUid('1.2.840.10008.1.2'), true);
  assert.equal(isValidUid('1..2'), false);
  assert.equal(isValidUid('1.2.a'), false);
  const ids = new Set(Array.from({ length: 1000 }, () => newId()));
  assert.equal(ids.size, 1000);
});
