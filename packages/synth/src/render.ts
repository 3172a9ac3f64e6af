import { mkdirSync, openSync, writevSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { encodePart10 } from './dicom.js';
import { renderPixels } from './images.js';
import { withPixels, type InstancePlan } from './iods.js';

/** Render one planned instance and write it as a Part 10 file. Returns bytes written. */
export function writeInstance(outDir: string, ip: InstancePlan): number {
  const pixels = renderPixels(ip.pixel, true);
  const chunks = encodePart10(withPixels(ip, pixels), ip.sopClassUid, ip.sopInstanceUid, ip.transferSyntax);
  const file = join(outDir, ip.path);
  mkdirSync(dirname(file), { recursive: true });
  const fd = openSync(file, 'w');
  let n = 0;
  try {
    // writev has an IOV_MAX limit; batch to be safe
    for (let i = 0; i < chunks.length; i += 512) n += writevSync(fd, chunks.slice(i, i + 512));
  } finally {
    closeSync(fd);
  }
  return n;
}

/** Encode in memory (for tests and STOW). */
export function encodeInstance(ip: InstancePlan): Buffer {
  const pixels = renderPixels(ip.pixel);
  return Buffer.concat(encodePart10(withPixels(ip, pixels), ip.sopClassUid, ip.sopInstanceUid, ip.transferSyntax));
}
