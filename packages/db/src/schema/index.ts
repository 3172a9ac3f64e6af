import type { CoreTables } from './core.js';

export type * from './core.js';

/**
 * Every table of the platform. Each part adds its tables in a file of its own
 * under `schema/` and extends this interface.
 */
export interface Database extends CoreTables {}
