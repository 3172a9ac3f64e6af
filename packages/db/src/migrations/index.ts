import type { ImagoMigration } from './types.js';
import * as m001 from './001_core.js';
import * as m002 from './002_jobs_owner.js';
import * as m010 from './010_hub.js';
import * as m020 from './020_site.js';
import * as m021 from './021_site_aliases.js';

/**
 * The one ordered list of migrations, run on both SQLite and PostgreSQL.
 * Append only; never edit a migration that has shipped.
 */
export const MIGRATIONS: Record<string, ImagoMigration> = {
  '001_core': m001,
  '002_jobs_owner': m002,
  '010_hub': m010,
  '020_site': m020,
  '021_site_aliases': m021,
};
