import { ImagoError } from '@imago/core';

/**
 * Bad DICOM input: truncated files, missing preamble/meta where it cannot be
 * inferred, invalid VRs, impossible lengths. Maps to `unprocessable` (422).
 * Messages name the tag and byte offset, never a value (values may be PHI).
 */
export class DicomParseError extends ImagoError {
  readonly offset: number | undefined;
  constructor(message: string, opts: { offset?: number; tag?: number; cause?: unknown } = {}) {
    const where = [
      opts.tag !== undefined ? `tag ${fmtTag(opts.tag)}` : '',
      opts.offset !== undefined ? `offset ${opts.offset}` : '',
    ].filter(Boolean).join(', ');
    super('unprocessable', `DICOM parse error: ${message}${where ? ` (${where})` : ''}`, {
      detail: { ...(opts.offset !== undefined ? { offset: opts.offset } : {}), ...(opts.tag !== undefined ? { tag: fmtTag(opts.tag) } : {}) },
      cause: opts.cause,
    });
    this.name = 'DicomParseError';
    this.offset = opts.offset;
  }
}

export function fmtTag(tag: number): string {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}
