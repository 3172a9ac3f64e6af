import type { Kysely } from 'kysely';

export interface MigrationContext {
  dialect: 'sqlite' | 'postgres';
}

export interface ImagoMigration {
  up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void>;
}
