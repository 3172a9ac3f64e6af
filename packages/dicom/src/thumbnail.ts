import dicomParser from 'dicom-parser';
import { PNG } from 'pngjs';
import { unprocessable, unsupportedMediaType } from '@imago/core';

const UNCOMPRESSED_LE = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);

/**
 * Render the first frame of an uncompressed grayscale instance as a PNG
 * thumbnail: window from WindowCenter/Width (else min/max of the modality
 * values), box-filter downsample to at most `maxSide`. Compressed transfer
 * syntaxes and colour images are refused as unsupported.
 */
export function renderThumbnail(buf: Buffer, maxSide: number): Buffer {
  const ds = dicomParser.parseDicom(new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
  const ts = (ds.string('x00020010') ?? '1.2.840.10008.1.2').trim();
  if (!UNCOMPRESSED_LE.has(ts)) throw unsupportedMediaType(`cannot render transfer syntax ${ts}: only uncompressed little-endian images are rendered`, { detail: { reason: 'unsupported-transfer-syntax', transferSyntax: ts } });
  const spp = ds.uint16('x00280002') ?? 1;
  const photometric = (ds.string('x00280004') ?? 'MONOCHROME2').trim();
  if (spp !== 1 || !photometric.startsWith('MONOCHROME')) throw unsupportedMediaType(`cannot render ${photometric} with ${spp} samples per pixel: only grayscale is rendered`, { detail: { reason: 'unsupported-photometric' } });
  const rows = ds.uint16('x00280010') ?? 0;
  const cols = ds.uint16('x00280011') ?? 0;
  const bits = ds.uint16('x00280100') ?? 16;
  const signed = (ds.uint16('x00280103') ?? 0) === 1;
  const pxEl = ds.elements.x7fe00010;
  if (!pxEl || !rows || !cols) throw unprocessable('instance has no pixel data to render', { detail: { reason: 'no-pixel-data' } });
  if (bits !== 8 && bits !== 16) throw unsupportedMediaType(`cannot render BitsAllocated ${bits}`, { detail: { reason: 'unsupported-bits' } });
  const n = rows * cols;
  if (pxEl.dataOffset + n * (bits / 8) > buf.length) throw unprocessable('pixel data is shorter than Rows × Columns', { detail: { reason: 'short-pixel-data' } });
  const slope = ds.floatString('x00281053') ?? 1;
  const intercept = ds.floatString('x00281052') ?? 0;
  const values = new Float32Array(n);
  const base = buf.byteOffset + pxEl.dataOffset;
  const view = new DataView(buf.buffer, base, n * (bits / 8));
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const raw = bits === 8 ? (signed ? view.getInt8(i) : view.getUint8(i)) : signed ? view.getInt16(i * 2, true) : view.getUint16(i * 2, true);
    const v = raw * slope + intercept;
    values[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  let center = ds.floatString('x00281050');
  let width = ds.floatString('x00281051');
  if (center === undefined || width === undefined || !(width > 0)) {
    center = (min + max) / 2;
    width = Math.max(1, max - min);
  }
  const lo = center - width / 2;
  const invert = photometric === 'MONOCHROME1';
  const scale = Math.min(1, maxSide / Math.max(rows, cols));
  const w = Math.max(1, Math.round(cols * scale));
  const h = Math.max(1, Math.round(rows * scale));
  const png = new PNG({ width: w, height: h, colorType: 0, inputColorType: 0, inputHasAlpha: false } as ConstructorParameters<typeof PNG>[0]);
  const out = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor((y * rows) / h);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * rows) / h));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor((x * cols) / w);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * cols) / w));
      let sum = 0;
      let cnt = 0;
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) {
        sum += values[yy * cols + xx]!;
        cnt++;
      }
      let g = Math.round(((sum / cnt - lo) / width) * 255);
      g = g < 0 ? 0 : g > 255 ? 255 : g;
      if (invert) g = 255 - g;
      const o = (y * w + x) * 4;
      out[o] = g;
      out[o + 1] = g;
      out[o + 2] = g;
      out[o + 3] = 255;
    }
  }
  png.data = out;
  return PNG.sync.write(png, { colorType: 0 });
}
