import type { Kysely } from 'kysely';
import type { MigrationContext } from './types.js';

/** Hub warehouse: sites, patient split, DICOM index, clinical linkage, purges, releases. */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const big = ctx.dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('hub_sites')
    .addColumn('code', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('region', 'text', (c) => c.notNull())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('shares_data', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('split_mode', 'text', (c) => c.notNull())
    .addColumn('training_percent', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('hub_patients')
    .addColumn('pseudonym', 'text', (c) => c.primaryKey())
    .addColumn('site', 'text', (c) => c.notNull())
    .addColumn('grp', 'text', (c) => c.notNull())
    .addColumn('assigned_at', 'text', (c) => c.notNull())
    .addColumn('assigned_rule', 'text', (c) => c.notNull())
    .addColumn('sex', 'text')
    .addColumn('age_band', 'text')
    .addColumn('ethnicity', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_patients_site_grp').on('hub_patients').columns(['site', 'grp']).execute();
  await db.schema
    .createTable('hub_split_conflicts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('site', 'text', (c) => c.notNull())
    .addColumn('assigned_grp', 'text', (c) => c.notNull())
    .addColumn('claimed_grp', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('detected_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_split_conflicts_u').on('hub_split_conflicts').columns(['pseudonym', 'site', 'claimed_grp']).unique().execute();
  await db.schema
    .createTable('hub_studies')
    .addColumn('study_key', 'text', (c) => c.primaryKey())
    .addColumn('study_uid', 'text', (c) => c.notNull().unique())
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('site', 'text', (c) => c.notNull())
    .addColumn('study_date', 'text')
    .addColumn('study_time', 'text')
    .addColumn('accession_number', 'text')
    .addColumn('study_id', 'text')
    .addColumn('study_description', 'text')
    .addColumn('referring_physician', 'text')
    .addColumn('patient_sex', 'text')
    .addColumn('patient_age', 'text')
    .addColumn('modalities', 'text', (c) => c.notNull())
    .addColumn('num_series', 'integer', (c) => c.notNull())
    .addColumn('num_instances', 'integer', (c) => c.notNull())
    .addColumn('attrs', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_studies_date').on('hub_studies').columns(['study_date']).execute();
  await db.schema.createIndex('hub_studies_pseudonym').on('hub_studies').columns(['pseudonym']).execute();
  await db.schema.createIndex('hub_studies_site').on('hub_studies').columns(['site', 'study_date']).execute();
  await db.schema
    .createTable('hub_series')
    .addColumn('series_key', 'text', (c) => c.primaryKey())
    .addColumn('study_key', 'text', (c) => c.notNull().references('hub_studies.study_key').onDelete('cascade'))
    .addColumn('series_uid', 'text', (c) => c.notNull())
    .addColumn('modality', 'text')
    .addColumn('body_part', 'text')
    .addColumn('series_number', 'integer')
    .addColumn('series_description', 'text')
    .addColumn('series_date', 'text')
    .addColumn('manufacturer', 'text')
    .addColumn('model', 'text')
    .addColumn('num_instances', 'integer', (c) => c.notNull())
    .addColumn('attrs', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_series_study').on('hub_series').columns(['study_key', 'series_number']).execute();
  await db.schema.createIndex('hub_series_uid').on('hub_series').columns(['series_uid']).execute();
  await db.schema.createIndex('hub_series_modality').on('hub_series').columns(['modality', 'study_key']).execute();
  await db.schema
    .createTable('hub_instances')
    .addColumn('instance_key', 'text', (c) => c.primaryKey())
    .addColumn('series_key', 'text', (c) => c.notNull().references('hub_series.series_key').onDelete('cascade'))
    .addColumn('study_key', 'text', (c) => c.notNull())
    .addColumn('sop_uid', 'text', (c) => c.notNull())
    .addColumn('sop_class_uid', 'text', (c) => c.notNull())
    .addColumn('instance_number', 'integer')
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('blob_key', 'text', (c) => c.notNull())
    .addColumn('size', big, (c) => c.notNull())
    .addColumn('site', 'text', (c) => c.notNull())
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('transfer_syntax', 'text', (c) => c.notNull())
    .addColumn('modality', 'text')
    .addColumn('body_part', 'text')
    .addColumn('study_date', 'text')
    .addColumn('content_date', 'text')
    .addColumn('manufacturer', 'text')
    .addColumn('model', 'text')
    .addColumn('patient_sex', 'text')
    .addColumn('patient_age', 'text')
    .addColumn('rows', 'integer')
    .addColumn('columns', 'integer')
    .addColumn('number_of_frames', 'integer')
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_instances_sha').on('hub_instances').columns(['site', 'sha256']).unique().execute();
  await db.schema.createIndex('hub_instances_series').on('hub_instances').columns(['series_key', 'instance_number']).execute();
  await db.schema.createIndex('hub_instances_study').on('hub_instances').columns(['study_key']).execute();
  await db.schema.createIndex('hub_instances_sop').on('hub_instances').columns(['sop_uid']).execute();
  await db.schema.createIndex('hub_instances_pseudonym').on('hub_instances').columns(['pseudonym']).execute();
  await db.schema.createIndex('hub_instances_received').on('hub_instances').columns(['received_at']).execute();
  await db.schema
    .createTable('hub_clinical_records')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('site', 'text', (c) => c.notNull())
    .addColumn('source_id', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('template_version', 'text', (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('stored_at', 'text', (c) => c.notNull())
    .addColumn('record', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_clinical_u').on('hub_clinical_records').columns(['site', 'source_id', 'sha256']).unique().execute();
  await db.schema.createIndex('hub_clinical_pseudonym').on('hub_clinical_records').columns(['pseudonym', 'received_at']).execute();
  await db.schema
    .createTable('hub_linked_data')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('field', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('provenance', 'text', (c) => c.notNull())
    .addColumn('imported_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_linked_pseudonym').on('hub_linked_data').columns(['pseudonym', 'source', 'field']).execute();
  await db.schema
    .createTable('hub_thumbnails')
    .addColumn('instance_key', 'text', (c) => c.primaryKey())
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('blob_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_thumbnails_pseudonym').on('hub_thumbnails').columns(['pseudonym']).execute();
  await db.schema
    .createTable('hub_purges')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('pseudonym_hmac', 'text', (c) => c.notNull())
    .addColumn('site', 'text')
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('reason', 'text')
    .addColumn('counts', 'text', (c) => c.notNull())
    .addColumn('instances_digest', 'text', (c) => c.notNull())
    .addColumn('audit_event_id', 'text', (c) => c.notNull())
    .addColumn('purged_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_purges_hmac').on('hub_purges').columns(['pseudonym_hmac']).execute();
  await db.schema
    .createTable('hub_releases')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('version', 'integer', (c) => c.notNull().unique())
    .addColumn('identifier', 'text', (c) => c.notNull().unique())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('training_hash', 'text', (c) => c.notNull())
    .addColumn('validation_hash', 'text', (c) => c.notNull())
    .addColumn('counts', 'text', (c) => c.notNull())
    .addColumn('datasheet_json', 'text', (c) => c.notNull())
    .addColumn('datasheet_md', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('hub_release_items')
    .addColumn('release_id', 'text', (c) => c.notNull().references('hub_releases.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('grp', 'text', (c) => c.notNull())
    .addColumn('site', 'text', (c) => c.notNull())
    .addColumn('modality', 'text')
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('ref', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size', big, (c) => c.notNull())
    .addColumn('leaf_hash', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_release_items_rel').on('hub_release_items').columns(['release_id', 'grp', 'kind']).execute();
  await db.schema.createIndex('hub_release_items_pseudonym').on('hub_release_items').columns(['pseudonym']).execute();
  await db.schema
    .createTable('hub_release_withheld')
    .addColumn('release_id', 'text', (c) => c.notNull().references('hub_releases.id'))
    .addColumn('purge_id', 'text', (c) => c.notNull())
    .addColumn('grp', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('leaf_hash', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hub_release_withheld_rel').on('hub_release_withheld').columns(['release_id']).execute();
}
