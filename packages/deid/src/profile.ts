import { PROFILE_ROWS } from './profile-table.generated.js';
import type { Action, OptionColumn, ProfileRow } from './profile-types.js';

export interface ActionTable {
  /** Action for a standard (even-group) tag, or undefined when the table does not list it. */
  actionFor(tag: number): { action: Action; row: ProfileRow } | undefined;
}

/**
 * Resolve each row under the enabled options: an enabled option column that
 * says K wins, else one that says C, else the Basic Profile action.
 */
export function resolveRow(row: ProfileRow, cols: OptionColumn[]): Action {
  let c = false;
  for (const col of cols) {
    const a = row.options[col];
    if (a === 'K') return 'K';
    if (a === 'C') c = true;
  }
  return c ? 'C' : row.basic;
}

export function buildActionTable(cols: OptionColumn[]): ActionTable {
  const exact = new Map<number, { action: Action; row: ProfileRow }>();
  const masked: Array<{ mask: number; value: number; action: Action; row: ProfileRow }> = [];
  for (const row of PROFILE_ROWS) {
    if (row.private || row.mask === undefined || row.value === undefined) continue;
    const action = resolveRow(row, cols);
    if (row.mask === 0xffffffff) exact.set(row.value, { action, row });
    else masked.push({ mask: row.mask, value: row.value, action, row });
  }
  return {
    actionFor(tag: number) {
      const e = exact.get(tag);
      if (e) return e;
      for (const m of masked) if (((tag & m.mask) >>> 0) === m.value) return { action: m.action, row: m.row };
      return undefined;
    },
  };
}
