import { readFileSync, writeFileSync } from 'node:fs';
import dicomParser from 'dicom-parser';
import { PNG } from 'pngjs';
const files = process.argv.slice(2);
const W = 256 * files.length; const H = 256;
const png = new PNG({ width: W, height: H });
files.forEach((f, k) => {
  const b = readFileSync(f); const ds = dicomParser.parseDicom(new Uint8Array(b));
  const rows = ds.uint16('x00280010')!, cols = ds.uint16('x00280011')!, bits = ds.uint16('x00280101')!, ba = ds.uint16('x00280100')!;
  const mono1 = ds.string('x00280004') === 'MONOCHROME1';
  const pe = ds.elements.x7fe00010!;
  const px = ba === 16 ? new Uint16Array(b.buffer, b.byteOffset + pe.dataOffset, rows * cols) : new Uint8Array(b.buffer, b.byteOffset + pe.dataOffset, rows * cols);
  const max = (1 << bits) - 1;
  for (let y = 0; y < H; y++) for (let x = 0; x < 256; x++) {
    const v = px[Math.floor(y * rows / H) * cols + Math.floor(x * cols / 256)]! / max;
    const g = Math.round(255 * (mono1 ? 1 - v : v));
    const o = (y * W + k * 256 + x) * 4; png.data[o] = png.data[o + 1] = png.data[o + 2] = g; png.data[o + 3] = 255;
  }
});
writeFileSync('/tmp/viz.png', PNG.sync.write(png));
