import type { Kysely } from 'kysely';

/**
 * Site: other identifiers of a patient seen in images (Other Patient IDs),
 * mapped to the images' pseudonym so that clinical data keyed by the NHS
 * number links to images keyed by a local MRN; and the de-identified Study
 * Instance UID of each instance, for the cases view; and an index on the
 * de-identified SOP Instance UID.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('site_patient_aliases')
    .addColumn('patient_id', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('site_patient_aliases_pk', ['patient_id', 'issuer'])
    .execute();
  await db.schema.alterTable('site_instances').addColumn('study_uid', 'text').execute();
  // The conflicting-duplicate check looks instances up by SOP Instance UID.
  await db.schema.createIndex('site_instances_sop_uid').on('site_instances').column('sop_uid').execute();
}
