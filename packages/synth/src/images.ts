import { drawText } from './font.js';

/**
 * Pixel synthesis. Chest radiographs are drawn as a low-resolution anatomical
 * template (lungs, mediastinum, heart, spine, ribs, clavicles, diaphragm,
 * opacities) in a site-specific contrast, then upsampled bilinearly to full
 * size while a fast integer PRNG adds quantum noise. The learnable signal
 * (opacities inside the lungs) lives in the template, so it is the same at
 * every output size.
 */

export interface Opacity {
  /** Centre in template coordinates (0..1). */
  x: number;
  y: number;
  /** Radius (fraction of image width). */
  r: number;
  /** Added attenuation (0..~0.3). */
  a: number;
}

export interface Anatomy {
  bodyW: number;
  lungW: number;
  lungH: number;
  lungTop: number;
  lungSep: number;
  heartW: number;
  heartShift: number;
  ribSpacing: number;
  ribPhase: number;
  ribCurve: number;
  diaphragm: number;
  exposure: number;
  heel: number;
}

export interface CxrRecipe {
  kind: 'cxr';
  rows: number;
  cols: number;
  bitsStored: number;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  contrast: { gamma: number; gain: number; offset: number; noise: number };
  anatomy: Anatomy;
  opacities: Opacity[];
  noiseSeed: number;
}

const T = 256;

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** The anatomical template in [0,1] attenuation units, T x T. */
export function cxrTemplate(an: Anatomy, ops: Opacity[]): Float32Array {
  const out = new Float32Array(T * T);
  for (let j = 0; j < T; j++) {
    const v = (j + 0.5) / T;
    for (let i = 0; i < T; i++) {
      const u = (i + 0.5) / T;
      const du = u - 0.5;
      // body: superellipse, wider at the shoulders
      const bw = an.bodyW * (v < 0.25 ? 0.85 + 0.6 * v : 1);
      const bx = du / bw;
      const by = (v - 0.58) / 0.62;
      const body = bx * bx * bx * bx + by * by * by * by < 1;
      if (!body) {
        out[j * T + i] = 0.03;
        continue;
      }
      let val = 0.42 + 0.08 * Math.abs(bx);
      // lungs
      const side = du < 0 ? -1 : 1;
      const lx = (du - side * an.lungSep) / an.lungW;
      const ly = (v - (an.lungTop + an.lungH / 2)) / (an.lungH / 2);
      const alx = lx < 0 ? -lx : lx;
      const mlx = alx < 1 ? alx : 1;
      const dome = an.diaphragm - 0.06 * (1 - mlx * mlx) + (side > 0 ? 0.0 : 0.015);
      const inLung = lx * lx + ly * ly < 1 && v < dome;
      if (inLung) {
        const lx2 = lx * lx;
        val = 0.14 + 0.08 * (v - an.lungTop) / an.lungH + 0.05 * lx2 * lx2;
        // opacities: peripheral / lower-zone ground glass
        for (const o of ops) {
          const dx = u - o.x;
          const dy = v - o.y;
          const d2 = (dx * dx + dy * dy) / (o.r * o.r);
          if (d2 < 9) val += o.a * Math.exp(-d2);
        }
      } else if (v > dome && Math.abs(du) < an.bodyW * 0.8) {
        val = 0.58; // sub-diaphragmatic soft tissue
      }
      // mediastinum and heart
      const medW = 0.055 + (v > 0.45 ? 0.0 : 0);
      const hx = (u - 0.5 - an.heartShift) / an.heartW;
      const hy = (v - 0.63) / 0.13;
      if ((Math.abs(du) < medW && v > 0.12) || (hx * hx + hy * hy < 1 && v < an.diaphragm + 0.02)) val = Math.max(val, 0.66);
      // spine
      if (Math.abs(du) < 0.03 && v > 0.05) val += 0.1;
      // ribs (posterior arcs), drawn over lungs and chest wall
      if (Math.abs(du) < an.bodyW * 0.95 && v > 0.12 && v < an.diaphragm + 0.05) {
        const yr = v - an.ribCurve * du * du - an.ribPhase;
        const q = yr / an.ribSpacing;
        const fr = q - Math.floor(q);
        if (fr < 0.28) val += 0.09 * Math.sin((fr / 0.28) * Math.PI);
      }
      // clavicles
      const cy = 0.17 + 0.12 * Math.abs(du) - 0.25 * du * du;
      if (Math.abs(du) > 0.04 && Math.abs(du) < 0.3 && Math.abs(v - cy) < 0.012) val += 0.12;
      out[j * T + i] = val;
    }
  }
  return out;
}

/**
 * Per-(noise, bit depth) noise tile: NOISE_TILE + NOISE_SLACK packed pixel
 * pairs (low half = even pixel, high half = odd pixel, as little-endian
 * Uint16 pairs read through a Uint32Array), each a triangular sample (sum of
 * two uniform bytes, sd ~104.5 before scaling) shifted by +amp so both lanes
 * are non-negative. Images read rows from it at per-image, per-row offsets,
 * so a frame costs one load and one add per pixel pair instead of a PRNG
 * step. Derived only from the recipe's contrast, so it is the same in every
 * thread: output stays byte-identical whatever the worker count.
 */
interface NoiseTile {
  pairs: Uint32Array;
  amp: number;
}
const NOISE_TILE = 1 << 16;
const NOISE_SLACK = 2048;
const noiseTiles = new Map<string, NoiseTile>();
function noiseTile(noise: number, maxV: number, minSlack: number): NoiseTile {
  const key = `${noise}|${maxV}|${minSlack > NOISE_SLACK ? minSlack : NOISE_SLACK}`;
  let t = noiseTiles.get(key);
  if (t) return t;
  const nscale = (noise * maxV) / 104.5;
  const amp = Math.round(255 * nscale);
  const len = NOISE_TILE + Math.max(NOISE_SLACK, minSlack);
  const pairs = new Uint32Array(len);
  // xorshift32 seeded from the contrast parameters; 4 bytes = 2 samples per step
  let s = hash32s(key) | 1;
  for (let k = 0; k < len; k++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const n0 = Math.round(((s & 255) + ((s >>> 8) & 255) - 255) * nscale) + amp;
    const n1 = Math.round((((s >>> 16) & 255) + (s >>> 24) - 255) * nscale) + amp;
    pairs[k] = n0 | (n1 << 16);
  }
  t = { pairs, amp };
  if (noiseTiles.size > 64) noiseTiles.clear();
  noiseTiles.set(key, t);
  return t;
}

/** FNV-1a + murmur finaliser over a string (local, to keep images.ts dependency-free). */
function hash32s(str: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

let hscratch: Int32Array | null = null;
function scratchI32(n: number): Int32Array {
  if (!hscratch || hscratch.length < n) hscratch = new Int32Array(n);
  return hscratch;
}

/**
 * Render a chest radiograph into `out` (Uint16, rows*cols), stored values in
 * [0, 2^bitsStored - 1].
 *
 * Integer-only per pixel: the site contrast is applied at template
 * resolution into 8-bit fixed point, clamped to [amp, maxV - amp] so that
 * adding noise in [-amp, amp] can never leave the stored range; the template
 * is upsampled bilinearly (horizontal pass once per template row, vertical
 * pass per output row) and two pixels are written per 32-bit store with the
 * packed noise pair added in the same instruction (the lanes cannot carry).
 */
export function renderCxr(r: CxrRecipe, out: Uint16Array): void {
  const { rows, cols } = r;
  if (cols & 1) throw new RangeError('CXR columns must be even');
  if (out.byteOffset & 3) {
    const tmp = new Uint16Array(rows * cols);
    renderCxr(r, tmp);
    out.set(tmp);
    return;
  }
  const tpl = cxrTemplate(r.anatomy, r.opacities);
  const maxV = (1 << r.bitsStored) - 1;
  const { gamma, gain, offset, noise } = r.contrast;
  const half = cols >> 1;
  const nt = noiseTile(noise, maxV, half);
  const amp = nt.amp;
  const span = Math.max(1, maxV - 2 * amp); // base values live in [0, span]; +noise (0..2amp) stays in [0, maxV]
  const inv = r.photometric === 'MONOCHROME1';
  // site contrast at template resolution, 8-bit fixed point; x^gamma from a
  // per-image table (linear between 4096 knots) instead of 65k Math.pow calls
  const ti = new Int32Array(T * T);
  const heel = r.anatomy.heel;
  const exposure = r.anatomy.exposure;
  const lut = new Float64Array(POW_KNOTS + 2);
  for (let q = 0; q <= POW_KNOTS; q++) lut[q] = Math.pow(q / POW_KNOTS, gamma);
  lut[POW_KNOTS + 1] = lut[POW_KNOTS]!;
  for (let k = 0; k < T * T; k++) {
    const i = k & (T - 1);
    const h = 1 + heel * ((i + 0.5) / T - 0.5);
    const x = clamp01(tpl[k]! * exposure * h) * POW_KNOTS;
    const q = x | 0;
    const p = lut[q]! + (lut[q + 1]! - lut[q]!) * (x - q);
    const d = clamp01(offset + gain * p) * maxV;
    let v = (inv ? maxV - d : d) - amp;
    v = v < 0 ? 0 : v > span ? span : v;
    ti[k] = Math.round(v * 256) || 0;
  }
  const out32 = new Uint32Array(out.buffer, out.byteOffset, (rows * cols) >> 1);
  const f = cols / T;
  if (f === 4 || f === 8 || f === 16) upsampleFused(ti, rows, cols, f, nt.pairs, r.noiseSeed, out32);
  else upsampleGeneric(ti, rows, cols, nt.pairs, r.noiseSeed, out32);
}

const POW_KNOTS = 4096;

/** Vertical bilinear weight (8-bit) and top template row for output row y. */
function rowWeights(rows: number): { y0: Int32Array; wy: Int32Array } {
  const y0 = new Int32Array(rows);
  const wy = new Int32Array(rows);
  for (let y = 0; y < rows; y++) {
    const f = Math.min(T - 1, Math.max(0, ((y + 0.5) * T) / rows - 0.5));
    const j = Math.min(T - 2, Math.floor(f));
    y0[y] = j;
    wy[y] = Math.round((f - j) * 256);
  }
  return { y0, wy };
}

/**
 * Fast path for cols = f*T with f in {4, 8, 16} (every full-size and
 * half-size radiograph). Per output row: bilinear vertical interpolation at
 * template resolution (T values), then the horizontal interpolation runs as
 * an accumulator (one add per pixel, no table loads) and each pixel pair is
 * stored as one 32-bit word with its packed noise pair added.
 */
function upsampleFused(ti: Int32Array, rows: number, cols: number, f: number, np: Uint32Array, seed: number, out32: Uint32Array): void {
  const { y0, wy } = rowWeights(rows);
  const vrow = new Int32Array(T);
  const half = cols >> 1;
  const edgePairs = f >> 2; // f/2 pixels clamped to the first/last template column
  const pairsPer = f >> 1; // pixel pairs per template interval
  const sh = (8 + Math.log2(2 * f)) | 0; // acc = value * 256 * 2f
  const bias = 1 << (sh - 1);
  let s = seed | 0 || 0x1234567;
  for (let y = 0; y < rows; y++) {
    const a0 = y0[y]! * T;
    const w = wy[y]!;
    for (let i = 0; i < T; i++) {
      const a = ti[a0 + i]!;
      vrow[i] = a + (((ti[a0 + T + i]! - a) * w + 128) >> 8);
    }
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    let n = (s >>> 16) & (NOISE_TILE - 1);
    let o = y * half;
    // left edge
    let e = (vrow[0]! + 128) >> 8;
    let pe = e | (e << 16);
    for (let k = 0; k < edgePairs; k++) out32[o++] = pe + np[n++]!;
    if (f === 8) {
      // full-size radiographs (2048 columns): the 4 pairs of an interval unrolled
      for (let i = 0; i < T - 1; i++) {
        const a = vrow[i]!;
        const d2 = (vrow[i + 1]! - a) * 2;
        let acc = a * 16 + (d2 >> 1) + 2048;
        let p0 = acc >> 12;
        acc += d2;
        let p1 = acc >> 12;
        acc += d2;
        out32[o] = (p0 | (p1 << 16)) + np[n]!;
        p0 = acc >> 12;
        acc += d2;
        p1 = acc >> 12;
        acc += d2;
        out32[o + 1] = (p0 | (p1 << 16)) + np[n + 1]!;
        p0 = acc >> 12;
        acc += d2;
        p1 = acc >> 12;
        acc += d2;
        out32[o + 2] = (p0 | (p1 << 16)) + np[n + 2]!;
        p0 = acc >> 12;
        acc += d2;
        p1 = acc >> 12;
        out32[o + 3] = (p0 | (p1 << 16)) + np[n + 3]!;
        o += 4;
        n += 4;
      }
    } else {
      for (let i = 0; i < T - 1; i++) {
        const a = vrow[i]!;
        const d = vrow[i + 1]! - a;
        let acc = a * 2 * f + d + bias;
        const d2 = d * 2;
        for (let m = 0; m < pairsPer; m++) {
          const v0 = acc >> sh;
          acc += d2;
          const v1 = acc >> sh;
          acc += d2;
          out32[o++] = (v0 | (v1 << 16)) + np[n++]!;
        }
      }
    }
    // right edge
    e = (vrow[T - 1]! + 128) >> 8;
    pe = e | (e << 16);
    for (let k = 0; k < edgePairs; k++) out32[o++] = pe + np[n++]!;
  }
}

/** Any size: separable bilinear through a horizontally upsampled copy of the template. */
function upsampleGeneric(ti: Int32Array, rows: number, cols: number, np: Uint32Array, seed: number, out32: Uint32Array): void {
  const half = cols >> 1;
  const hx0 = new Int32Array(cols);
  const hwx = new Int32Array(cols);
  for (let x = 0; x < cols; x++) {
    const f = Math.min(T - 1, Math.max(0, ((x + 0.5) * T) / cols - 0.5));
    const x0 = Math.min(T - 2, Math.floor(f));
    hx0[x] = x0;
    hwx[x] = Math.round((f - x0) * 256);
  }
  // horizontal pass, rounded, +128 so the vertical pass rounds too
  const hrows = scratchI32(T * cols);
  for (let j = 0; j < T; j++) {
    const base = j * T;
    const ob = j * cols;
    for (let x = 0; x < cols; x++) {
      const a = ti[base + hx0[x]!]!;
      hrows[ob + x] = a + (((ti[base + hx0[x]! + 1]! - a) * hwx[x]! + 128) >> 8) + 128;
    }
  }
  const { y0, wy } = rowWeights(rows);
  let s = seed | 0 || 0x1234567;
  for (let y = 0; y < rows; y++) {
    const w = wy[y]!;
    const o0 = y0[y]! * cols;
    const o1 = o0 + cols;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const no = (s >>> 16) & (NOISE_TILE - 1);
    const orow = y * half;
    for (let k = 0, x = 0; k < half; k++, x += 2) {
      const a0 = hrows[o0 + x]!;
      const a1 = hrows[o0 + x + 1]!;
      const v0 = (a0 + (((hrows[o1 + x]! - a0) * w) >> 8)) >> 8;
      const v1 = (a1 + (((hrows[o1 + x + 1]! - a1) * w) >> 8)) >> 8;
      out32[orow + k] = (v0 | (v1 << 16)) + np[no + k]!;
    }
  }
}

export interface CtRecipe {
  kind: 'ct';
  size: number;
  /** Position of this slice along the thorax, 0 (apex) .. 1 (base). */
  z: number;
  anatomy: { bodyA: number; bodyB: number; lungA: number; lungB: number; heartR: number };
  /** Ground-glass blobs in slice coordinates (0..1), HU increase. */
  ggo: Array<{ x: number; y: number; r: number; z: number; hu: number }>;
  noiseSeed: number;
}

/** CT slice in stored values (HU + 1024), 12 bits stored. */
export function renderCt(r: CtRecipe, out: Uint16Array): void {
  const n = r.size;
  const { bodyA, bodyB, lungA, lungB, heartR } = r.anatomy;
  const z = r.z;
  const lungScale = Math.sin(Math.PI * Math.min(1, 0.15 + z * 0.9)) * 0.9 + 0.1;
  const heartOn = z > 0.45 ? Math.min(1, (z - 0.45) * 4) : 0;
  let s = r.noiseSeed | 0 || 0x2345671;
  for (let j = 0; j < n; j++) {
    const v = (j + 0.5) / n;
    for (let i = 0; i < n; i++) {
      const u = (i + 0.5) / n;
      const du = u - 0.5;
      const dv = v - 0.52;
      let hu = -1000;
      if (v > 0.86 && v < 0.9 && Math.abs(du) < 0.45) hu = 200; // table
      const b = (du / bodyA) ** 2 + (dv / bodyB) ** 2;
      if (b < 1) {
        hu = b > 0.8 ? -90 : 40; // subcutaneous fat, soft tissue
        // ribs: ring segments near the body wall
        if (b > 0.62 && b < 0.7 && Math.sin(Math.atan2(dv, du) * 9) > 0.3) hu = 650;
        const side = du < 0 ? -1 : 1;
        const lx = (du - side * 0.14) / (lungA * lungScale);
        const ly = (dv + 0.01) / (lungB * lungScale);
        if (lx * lx + ly * ly < 1) {
          hu = -860 + 40 * ly;
          for (const g of r.ggo) {
            const d2 = ((u - g.x) ** 2 + (v - g.y) ** 2) / (g.r * g.r) + ((z - g.z) / 0.15) ** 2;
            if (d2 < 6) hu += g.hu * Math.exp(-d2);
          }
        }
        const hx = (du - 0.03) / (heartR * heartOn + 1e-6);
        const hy = (dv + 0.02) / (heartR * 0.85 * heartOn + 1e-6);
        if (heartOn > 0 && hx * hx + hy * hy < 1) hu = 45;
        if (Math.abs(du) < 0.07 && dv > -0.12 && dv < 0.0 && z < 0.5) hu = Math.max(hu, 40); // mediastinal vessels
        const sx = du / 0.05;
        const sy = (dv - 0.2) / 0.05;
        if (sx * sx + sy * sy < 1) hu = 700; // vertebral body
      }
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const noise = ((s & 255) + ((s >>> 8) & 255) - 255) * 0.12;
      let sv = hu + 1024 + noise;
      sv = sv < 0 ? 0 : sv > 4095 ? 4095 : sv;
      out[j * n + i] = sv;
    }
  }
}

export interface ScRecipe {
  kind: 'sc';
  size: number;
  lines: string[];
  cxr: CxrRecipe;
}

/** Secondary capture: an 8-bit screen grab of a chest image with PHI burned in. */
export function renderSc(r: ScRecipe, out: Uint8Array): void {
  const tmp = new Uint16Array(r.size * r.size);
  renderCxr({ ...r.cxr, rows: r.size, cols: r.size, bitsStored: 8, photometric: 'MONOCHROME2' }, tmp);
  for (let k = 0; k < tmp.length; k++) out[k] = tmp[k]!;
  const scale = Math.max(1, Math.floor(r.size / 256));
  r.lines.forEach((line, k) => drawText(out, r.size, r.size, line, 4 * scale, (4 + k * 10) * scale, scale, 255));
}

export interface UsRecipe {
  kind: 'us';
  rows: number;
  cols: number;
  lines: string[];
  noiseSeed: number;
}

/** Ultrasound B-mode sector with speckle and burned-in patient details. */
export function renderUs(r: UsRecipe, out: Uint8Array): void {
  const { rows, cols } = r;
  let s = r.noiseSeed | 0 || 0x3456712;
  const ax = cols / 2;
  const ay = rows * 0.08;
  const depth = rows * 0.88;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const dx = x - ax;
      const dy = y - ay;
      const rr = Math.sqrt(dx * dx + dy * dy);
      const ang = Math.atan2(dx, dy);
      let v = 0;
      if (dy > 0 && rr < depth && Math.abs(ang) < 0.62) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        const speckle = (s & 255) / 255;
        const layer = 0.35 + 0.3 * Math.sin(rr / 18) + (Math.abs(rr - depth * 0.55) < depth * 0.04 ? 0.5 : 0);
        v = Math.min(255, 255 * speckle * speckle * layer * (1 - rr / depth / 1.6));
      }
      out[y * cols + x] = v;
    }
  }
  const scale = Math.max(1, Math.floor(cols / 320));
  r.lines.forEach((line, k) => drawText(out, cols, rows, line, 4 * scale, (4 + k * 10) * scale, scale, 230));
}

export type PixelRecipe = CxrRecipe | CtRecipe | ScRecipe | UsRecipe;

/** Size in bytes of the (7FE0,0010) value for a recipe. */
export function pixelBytes(p: PixelRecipe): number {
  switch (p.kind) {
    case 'cxr': return p.rows * p.cols * 2;
    case 'ct': return p.size * p.size * 2;
    case 'sc': return p.size * p.size;
    case 'us': return p.rows * p.cols;
  }
}

/**
 * Render pixels as a little-endian buffer ready for (7FE0,0010). With
 * `into` (exactly pixelBytes(p) long; every byte is overwritten), the pixels
 * are rendered there, e.g. into a reusable file slab; otherwise a new buffer.
 */
export function renderPixels(p: PixelRecipe, into?: Buffer): Buffer {
  const n = pixelBytes(p);
  if (into && into.length !== n) throw new RangeError(`pixel buffer is ${into.length} bytes, need ${n}`);
  const buf = into ?? Buffer.alloc(n);
  switch (p.kind) {
    case 'cxr':
      if (p.cols % 2) throw new RangeError('CXR columns must be even');
      renderCxr(p, new Uint16Array(buf.buffer, buf.byteOffset, p.rows * p.cols));
      break;
    case 'ct':
      if (buf.byteOffset & 1) {
        const tmp = new Uint16Array(p.size * p.size);
        renderCt(p, tmp);
        Buffer.from(tmp.buffer).copy(buf);
      } else renderCt(p, new Uint16Array(buf.buffer, buf.byteOffset, p.size * p.size));
      break;
    case 'sc':
      renderSc(p, new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
      break;
    case 'us':
      renderUs(p, new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
      break;
  }
  return buf;
}
