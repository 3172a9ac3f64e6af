import type { CoreTables } from './core.js';
import type { HubTables } from './hub.js';
import type { SiteTables } from './site.js';

export type * from './core.js';
export type * from './hub.js';
export type * from './site.js';

/**
 * Every table of the platform. Each part adds its tables in a file of its own
 * under `schema/` and joins it here with `&`.
 */
export type Database = CoreTables & SiteTables & HubTables;
