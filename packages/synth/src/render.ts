import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { encodePart10 } from './dicom.js';
import { pixelBytes, renderPixels } from './images.js';
import { withPixels, type InstancePlan } from './iods.js';

/**
 * Room reserved in front of the pixels for the preamble, meta header and
 * dataset header (a radiograph header is ~3 KB), and behind them for a pad
 * byte. Pixels start at a 4-byte-aligned offset so the renderer can write
 * pixel pairs through a Uint32Array.
 */
const HEAD = 64 * 1024;
const TAIL = 64;

/**
 * A reusable file buffer: the renderer writes the pixels at offset HEAD, the
 * header is copied right in front of them, and the whole file is one
 * contiguous slice — one write() of header + pixels, no concatenation.
 */
export class FileSlab {
  private buf: Buffer | null = null;

  /** Render `ip` and return its complete Part 10 bytes (valid until the next call). */
  encode(ip: InstancePlan): Buffer {
    const n = pixelBytes(ip.pixel);
    if (!this.buf || this.buf.length < HEAD + n + TAIL) this.buf = Buffer.allocUnsafeSlow(HEAD + n + TAIL);
    const buf = this.buf;
    const pixels = renderPixels(ip.pixel, buf.subarray(HEAD, HEAD + n));
    const chunks = encodePart10(withPixels(ip, pixels), ip.sopClassUid, ip.sopInstanceUid, ip.transferSyntax);
    const at = chunks.indexOf(pixels);
    let head = 0;
    for (let i = 0; i < at; i++) head += chunks[i]!.length;
    let tail = 0;
    for (let i = at + 1; i < chunks.length; i++) tail += chunks[i]!.length;
    if (at < 0 || head > HEAD || tail > TAIL) return Buffer.concat(chunks);
    let o = HEAD - head;
    for (let i = 0; i < at; i++) o += chunks[i]!.copy(buf, o);
    o = HEAD + n;
    for (let i = at + 1; i < chunks.length; i++) o += chunks[i]!.copy(buf, o);
    return buf.subarray(HEAD - head, HEAD + n + tail);
  }
}

const slab = new FileSlab();
const isMissingDir = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

/** Render one planned instance and write it as a Part 10 file. Returns bytes written. */
export function writeInstance(outDir: string, ip: InstancePlan): number {
  const bytes = slab.encode(ip);
  const file = join(outDir, ip.path);
  // most files go to a new directory, but try the write first: no stat/mkdir when it exists
  try {
    writeFileSync(file, bytes);
  } catch (e) {
    if (!isMissingDir(e)) throw e;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, bytes);
  }
  return bytes.length;
}

/**
 * Render into `s` and start writing the file asynchronously (libuv thread
 * pool), so the next image renders while this one is copied into the page
 * cache. `s` must not be reused until the returned promise settles.
 */
export function writeInstanceAsync(outDir: string, ip: InstancePlan, s: FileSlab): Promise<number> {
  const bytes = s.encode(ip);
  const file = join(outDir, ip.path);
  return writeFile(file, bytes).then(
    () => bytes.length,
    async (e: unknown) => {
      if (!isMissingDir(e)) throw e;
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, bytes);
      return bytes.length;
    },
  );
}

/** Encode in memory (for tests and STOW). */
export function encodeInstance(ip: InstancePlan): Buffer {
  const pixels = renderPixels(ip.pixel);
  return Buffer.concat(encodePart10(withPixels(ip, pixels), ip.sopClassUid, ip.sopInstanceUid, ip.transferSyntax));
}
