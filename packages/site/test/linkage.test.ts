import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateDataset, readAnswerKey } from '@imago/synth';
import { clinicalFromFhir, importDirectory, saveClinical } from '@imago/site';
import { tempDir } from '@imago/testkit';
import { startPair, waitFor } from './helpers.js';

// Hospitals key PACS images by a local MRN and clinical systems by the NHS
// number; the synthetic sites do the same (MRN in PatientID, the NHS number in
// Other Patient IDs). Clinical data keyed by the NHS number must land on the
// images' pseudonym, and an opt-out by NHS number must catch MRN-keyed images.
test('clinical data keyed by NHS number links to images keyed by MRN; opt-out by NHS number drops them', async () => {
  const src = tempDir('imago-link-');
  await generateDataset({ out: src, seed: 7, sites: 1, patients: 6, scale: 0.125, ctSlices: 2, workers: 0 });
  const key = readAnswerKey(src);
  const site = readdirSync(join(src, 'sites'))[0]!;
  const pair = await startPair();
  try {
    const node = pair.platform.site!.node;
    const actor = { principal: { kind: 'user' as const, id: 't', name: 'test', grants: [{ role: 'site_admin', orgId: await node.orgId() }] }, ip: null };
    // Opt one patient out by NHS number before anything arrives.
    const optedOut = key.patients[0]!;
    const nhs = (optedOut as unknown as { phi: { nhsNumber: string } }).phi.nhsNumber;
    assert.match(nhs, /^\d{10}$/);
    await node.addOptouts(actor, [{ patientId: nhs, issuer: null }], 'test');

    const r = await importDirectory(node, join(src, 'sites', site, 'dicom'));
    assert.ok(r.imported > 6);
    const db = pair.platform.db.db;
    await waitFor('pipeline past de-identification', async () => {
      const busy = await db.selectFrom('site_instances').select('id').where('state', 'in', ['received', 'checked']).execute();
      return busy.length === 0;
    });
    const dropped = await db.selectFrom('site_instances').select('id').where('state', '=', 'dropped-opt-out').execute();
    assert.ok(dropped.length >= 1, 'the opted-out patient’s MRN-keyed images were dropped');

    const fhirDir = join(src, 'sites', site, 'clinical', 'fhir');
    const inputs = readdirSync(fhirDir).flatMap((f) => clinicalFromFhir(JSON.parse(readFileSync(join(fhirDir, f), 'utf8')) as unknown, { site: node.config.site.code }));
    assert.equal(inputs.length, 6);
    const saved = await saveClinical(node, actor, inputs, { source: 'test-fhir' });
    assert.equal(saved.droppedOptOut, 1, 'the opted-out patient’s clinical record is dropped too');

    const imagePseudonyms = new Set((await db.selectFrom('site_instances').select('pseudonym').where('state', 'not in', ['dropped-opt-out']).execute()).map((x) => x.pseudonym));
    const clinical = await db.selectFrom('site_clinical').select('pseudonym').execute();
    assert.equal(clinical.length, 5);
    for (const c of clinical) assert.ok(imagePseudonyms.has(c.pseudonym), 'every clinical record has the pseudonym of its images');

    // At the hub, each linked patient is one patient: images and clinical data together.
    await waitFor('clinical records at the hub', async () => {
      const n = await db.selectFrom('hub_clinical_records' as never).select('id' as never).execute();
      return n.length >= 5;
    });
    const hubPatients = await db.selectFrom('hub_patients' as never).selectAll().execute();
    assert.equal(hubPatients.length, 5, 'five patients at the hub, not ten');
  } finally {
    await pair.close();
  }
});
