import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { encodeCommandSet } from '../src/dimse.js';

const dimse = createRequire(import.meta.url)('dcmjs-dimse') as typeof import('dcmjs-dimse');

test('C-STORE-RSP command sets are encoded byte for byte as dcmjs-dimse encodes them', () => {
  const cases: Array<[string, string, number, number]> = [
    ['1.2.840.10008.5.1.4.1.1.2', '1.2.3.4.5', 7, 0x0000],
    ['1.2.840.10008.5.1.4.1.1.1.1', '1.2.826.0.1.3680043.8.498.12', 65535, 0xa700],
    ['1.2.840.10008.5.1.4.1.1.7', '2.25.1', 1, 0xb000],
  ];
  for (const [cls, inst, id, status] of cases) {
    const rq = new (dimse.requests.CStoreRequest as unknown as new () => unknown)() as { setAffectedSopClassUid(u: string): void; setAffectedSopInstanceUid(u: string): void; setMessageId(n: number): void };
    rq.setAffectedSopClassUid(cls);
    rq.setAffectedSopInstanceUid(inst);
    rq.setMessageId(id);
    const r = dimse.responses.CStoreResponse.fromRequest(rq as never);
    r.setStatus(status);
    const cds = r.getCommandDataset() as unknown as { getElements(): Record<string, unknown>; getDenaturalizedCommandDataset(): Buffer };
    assert.deepEqual(encodeCommandSet(cds.getElements()), cds.getDenaturalizedCommandDataset());
  }
  assert.equal(encodeCommandSet({ CommandField: 0x8001, ErrorComment: 'x' }), null, 'unknown elements are left to dcmjs-dimse');
});
