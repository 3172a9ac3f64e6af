import type { Kysely } from 'kysely';
import type { MigrationContext } from './types.js';

export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const big = ctx.dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('site_instances')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('calling_ae', 'text')
    .addColumn('incoming_path', 'text')
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('size', big, (c) => c.notNull())
    .addColumn('pseudonym', 'text')
    .addColumn('outbox_path', 'text')
    .addColumn('sha256', 'text')
    .addColumn('out_size', big)
    .addColumn('sop_uid', 'text')
    .addColumn('modality', 'text')
    .addColumn('reason', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('deidentified_at', 'text')
    .addColumn('uploaded_at', 'text')
    .addColumn('delete_original_after', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('site_instances_state').on('site_instances').columns(['state', 'received_at']).execute();
  await db.schema.createIndex('site_instances_pseudonym').on('site_instances').columns(['pseudonym']).execute();
  await db.schema.createIndex('site_instances_sha').on('site_instances').columns(['sha256']).execute();
  await db.schema
    .createTable('site_optouts')
    .addColumn('hash', 'text', (c) => c.primaryKey())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('site_pseudonyms')
    .addColumn('pseudonym', 'text', (c) => c.primaryKey())
    .addColumn('patient_id', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('site_clinical')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('template_version', 'text', (c) => c.notNull())
    .addColumn('record', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('uploaded_at', 'text')
    .execute();
  await db.schema.createIndex('site_clinical_pseudonym').on('site_clinical').columns(['pseudonym', 'kind']).execute();
  await db.schema
    .createTable('site_purges')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('pseudonym', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('evidence_id', 'text')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('done_at', 'text')
    .execute();
  await db.schema
    .createTable('site_counters')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', big, (c) => c.notNull())
    .execute();
}
