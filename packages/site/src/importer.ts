import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SiteNode } from './node.js';

async function* walk(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile()) yield p;
  }
}

async function isDicomFile(p: string): Promise<boolean> {
  const { open } = await import('node:fs/promises');
  const fh = await open(p, 'r');
  try {
    const b = Buffer.alloc(132);
    const { bytesRead } = await fh.read(b, 0, 132, 0);
    if (bytesRead >= 132 && b.toString('latin1', 128, 132) === 'DICM') return true;
    // Raw data set without preamble: starts with a group 0002 or 0008 element.
    return bytesRead >= 8 && (b.readUInt16LE(0) === 0x0002 || b.readUInt16LE(0) === 0x0008);
  } finally {
    await fh.close();
  }
}

/** Walk a folder and import every DICOM file into the pipeline. */
export async function importDirectory(node: SiteNode, dir: string, onProgress?: (done: number, total: number, file: string) => void): Promise<{ imported: number; skipped: number; failed: Array<{ file: string; reason: string }> }> {
  const files: string[] = [];
  for await (const f of walk(dir)) files.push(f);
  let imported = 0;
  let skipped = 0;
  const failed: Array<{ file: string; reason: string }> = [];
  let i = 0;
  for (const f of files) {
    i++;
    try {
      if ((await stat(f)).size === 0 || !(await isDicomFile(f))) skipped++;
      else {
        await node.importFile(f);
        imported++;
      }
    } catch (e) {
      failed.push({ file: f, reason: (e as Error).message });
    }
    onProgress?.(i, files.length, f);
  }
  return { imported, skipped, failed };
}
