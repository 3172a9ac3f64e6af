/** Action codes of DICOM PS3.15 E.1.1, after combined codes are resolved. */
export type Action = 'D' | 'Z' | 'X' | 'K' | 'C' | 'U';
/** Action codes as they appear in Table E.1-1, including combinations. */
export type TableAction = Action | 'X/Z' | 'X/D' | 'Z/D' | 'X/Z/D' | 'X/Z/U*';

export type OptionColumn =
  | 'rtnSafePrivOpt' | 'rtnUIDsOpt' | 'rtnDevIdOpt' | 'rtnInstIdOpt' | 'rtnPatCharsOpt'
  | 'rtnLongFullDatesOpt' | 'rtnLongModifDatesOpt' | 'cleanDescOpt' | 'cleanStructContOpt' | 'cleanGraphOpt';

export interface ProfileRow {
  /** Tag as written in the standard, e.g. `(0010,0010)` or `(60XX,3000)`. */
  tag: string;
  name: string;
  /** (tag & mask) === value selects the row; absent for the private-attributes row. */
  mask?: number;
  value?: number;
  private?: true;
  /** The attribute appears in a standard composite IOD. */
  stdCompIOD: boolean;
  /** Basic Profile action as written in the table (possibly a combination). */
  basicProfile: TableAction;
  /** Basic Profile action with any combination resolved (see scripts/gen-deid-table.ts). */
  basic: Action;
  options: Partial<Record<OptionColumn, Action>>;
}
