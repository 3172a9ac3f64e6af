/**
 * Just enough DICOM Part 10 to draw an image in the browser: uncompressed
 * little-endian (explicit or implicit VR), grayscale, 8 or 16 bits. Anything
 * else is reported as not viewable rather than drawn wrongly.
 */
export interface DicomImage {
  rows: number;
  columns: number;
  frames: number;
  /** Modality values (slope/intercept applied) of the first frame. */
  values: Float32Array;
  min: number;
  max: number;
  windowCenter: number | null;
  windowWidth: number | null;
  photometric: string;
  modality: string | null;
}

const LONG_VR = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

interface El { offset: number; length: number; vr: string | null }

export function parseDicomImage(buf: ArrayBuffer): DicomImage {
  const dv = new DataView(buf);
  const u8 = new Uint8Array(buf);
  const magic = String.fromCharCode(u8[128] ?? 0, u8[129] ?? 0, u8[130] ?? 0, u8[131] ?? 0);
  let pos = magic === 'DICM' ? 132 : 0;
  const els = new Map<string, El>();
  let ts = '1.2.840.10008.1.2.1';
  const text = (e: El | undefined) => (e ? new TextDecoder('latin1').decode(u8.subarray(e.offset, e.offset + e.length)).replace(/[\0 ]+$/, '').trim() : null);

  // Read one element header at p; returns the element and where its value ends.
  const readHeader = (p: number, explicit: boolean) => {
    const group = dv.getUint16(p, true);
    const elem = dv.getUint16(p + 2, true);
    const tag = ((group << 16) | elem) >>> 0;
    if (group === 0xfffe) return { tag, vr: null as string | null, offset: p + 8, length: dv.getUint32(p + 4, true) };
    if (explicit) {
      const vr = String.fromCharCode(u8[p + 4]!, u8[p + 5]!);
      if (LONG_VR.has(vr)) return { tag, vr, offset: p + 12, length: dv.getUint32(p + 8, true) };
      return { tag, vr, offset: p + 8, length: dv.getUint16(p + 6, true) };
    }
    return { tag, vr: null as string | null, offset: p + 8, length: dv.getUint32(p + 4, true) };
  };
  // Skip an undefined-length value (sequence or item); returns the offset after its delimiter.
  const skipUndefined = (p: number, explicit: boolean): number => {
    while (p + 8 <= buf.byteLength) {
      const h = readHeader(p, explicit);
      if (h.tag === 0xfffee0dd) return h.offset; // sequence delimiter
      if (h.tag === 0xfffee00d) return h.offset; // item delimiter
      if (h.tag === 0xfffee000) {
        p = h.length === 0xffffffff ? skipUndefined(h.offset, explicit) : h.offset + h.length;
        continue;
      }
      p = h.length === 0xffffffff ? skipUndefined(h.offset, explicit) : h.offset + h.length;
    }
    return p;
  };

  while (pos + 8 <= buf.byteLength) {
    const explicit = dv.getUint16(pos, true) === 0x0002 || ts !== '1.2.840.10008.1.2';
    const h = readHeader(pos, explicit);
    const key = h.tag.toString(16).padStart(8, '0').toUpperCase();
    if (h.length === 0xffffffff) {
      if (key === '7FE00010') throw new Error('This image is compressed (encapsulated pixel data); it cannot be shown in the browser viewer.');
      pos = skipUndefined(h.offset, explicit);
      continue;
    }
    els.set(key, { offset: h.offset, length: h.length, vr: h.vr });
    if (key === '00020010') ts = text(els.get(key)) ?? ts;
    if (key === '7FE00010') break;
    pos = h.offset + h.length;
  }
  if (ts !== '1.2.840.10008.1.2' && ts !== '1.2.840.10008.1.2.1') throw new Error(`Transfer syntax ${ts} is not viewable in the browser (only uncompressed little-endian).`);
  const us = (k: string) => (els.get(k) ? dv.getUint16(els.get(k)!.offset, true) : null);
  const ds = (k: string) => {
    const t = text(els.get(k));
    if (!t) return null;
    const v = Number(t.split('\\')[0]);
    return Number.isFinite(v) ? v : null;
  };
  const rows = us('00280010') ?? 0;
  const columns = us('00280011') ?? 0;
  const bits = us('00280100') ?? 16;
  const signed = us('00280103') === 1;
  const spp = us('00280002') ?? 1;
  const photometric = text(els.get('00280004')) ?? 'MONOCHROME2';
  const px = els.get('7FE00010');
  if (!px || !rows || !columns) throw new Error('This instance has no image.');
  if (spp !== 1 || !photometric.startsWith('MONOCHROME')) throw new Error(`${photometric} colour images are not viewable here.`);
  if (bits !== 8 && bits !== 16) throw new Error(`BitsAllocated ${bits} is not viewable here.`);
  const n = rows * columns;
  if (px.offset + n * (bits / 8) > buf.byteLength) throw new Error('The pixel data is shorter than the image size.');
  const slope = ds('00281053') ?? 1;
  const intercept = ds('00281052') ?? 0;
  const values = new Float32Array(n);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const o = px.offset + i * (bits / 8);
    const raw = bits === 8 ? (signed ? dv.getInt8(o) : dv.getUint8(o)) : signed ? dv.getInt16(o, true) : dv.getUint16(o, true);
    const v = raw * slope + intercept;
    values[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return {
    rows, columns, frames: Number(text(els.get('00280008')) ?? 1) || 1, values, min, max,
    windowCenter: ds('00281050'), windowWidth: ds('00281051'), photometric, modality: text(els.get('00080060')),
  };
}

/** Draw with a linear VOI window (DICOM PS3.3 C.11.2.1.2) into a canvas. */
export function drawWindowed(canvas: HTMLCanvasElement, img: DicomImage, center: number, width: number): void {
  canvas.width = img.columns;
  canvas.height = img.rows;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const out = ctx.createImageData(img.columns, img.rows);
  const w = Math.max(1, width);
  const lo = center - 0.5 - (w - 1) / 2;
  const invert = img.photometric === 'MONOCHROME1';
  for (let i = 0; i < img.values.length; i++) {
    let g = ((img.values[i]! - lo) / (w - 1)) * 255;
    g = g < 0 ? 0 : g > 255 ? 255 : g;
    if (invert) g = 255 - g;
    const j = i * 4;
    out.data[j] = out.data[j + 1] = out.data[j + 2] = g;
    out.data[j + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
}

/** Fetch one instance as Part 10 bytes; unwraps a single-part multipart/related answer. */
export async function fetchInstance(url: string): Promise<ArrayBuffer> {
  const res = await fetch(url, { headers: { accept: 'multipart/related; type="application/dicom", application/dicom' }, credentials: 'same-origin' });
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try {
      msg = ((await res.json()) as { message?: string }).message ?? msg;
    } catch {
      /* not JSON */
    }
    throw new Error(msg);
  }
  const buf = await res.arrayBuffer();
  const ct = res.headers.get('content-type') ?? '';
  if (!ct.startsWith('multipart/')) return buf;
  const m = /boundary="?([^";]+)"?/i.exec(ct);
  if (!m) return buf;
  const u8 = new Uint8Array(buf);
  const find = (needle: Uint8Array, from: number) => {
    outer: for (let i = from; i <= u8.length - needle.length; i++) {
      for (let j = 0; j < needle.length; j++) if (u8[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  };
  const enc = new TextEncoder();
  const start = find(enc.encode(`--${m[1]}`), 0);
  const headEnd = find(enc.encode('\r\n\r\n'), start);
  const end = find(enc.encode(`\r\n--${m[1]}`), headEnd + 4);
  if (start < 0 || headEnd < 0) return buf;
  return buf.slice(headEnd + 4, end < 0 ? undefined : end);
}
