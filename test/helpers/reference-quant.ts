/**
 * An independent implementation of the quantizers, written for the tests from the description in
 * shared/reference/formats.md (and compressed-tensors' rules), in plain double arithmetic with explicit
 * float32 rounding (Math.fround). It shares no code with the addon.
 */
const fr = Math.fround;

export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** C's roundf: half away from zero. */
export function roundAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** IEEE binary16 encoding of a float32 value, round to nearest even, by arithmetic. */
export function f16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal (1024 = smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  let mant = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (mant === 1024) {
    mant = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | mant;
}

export function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32a = new Float32Array(1);
const u32a = new Uint32Array(f32a.buffer);
export function bf16Bits(x: number): number {
  f32a[0] = x;
  const u = u32a[0]!;
  const lsb = (u >>> 16) & 1;
  return ((u + 0x7fff + lsb) >>> 16) & 0xffff;
}
export function bf16Value(h: number): number {
  u32a[0] = h << 16;
  return f32a[0]!;
}

/** float -> int8 as C's (int8_t)(float) compiles on x86: truncation, NaN/huge -> INT_MIN -> 0. */
function truncToI8(v: number): number {
  if (!Number.isFinite(v) || v <= -2147483904 || v >= 2147483648) return 0;
  return (Math.trunc(v) << 24) >> 24;
}

export function q8_0(x: ArrayLike<number>): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    dv.setUint16(b * 34, f16Bits(d), true);
    for (let j = 0; j < 32; j++) {
      const v = fr(x[b * 32 + j]! * id);
      dv.setInt8(b * 34 + 2 + j, Number.isFinite(v) ? roundAway(v) : 0);
    }
  }
  return out;
}

export function q4_0(x: ArrayLike<number>): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[b * 32 + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    dv.setUint16(b * 18, f16Bits(d), true);
    const q = (j: number) => Math.min(15, truncToI8(fr(fr(x[b * 32 + j]! * id) + 8.5)));
    for (let j = 0; j < 16; j++) out[b * 18 + 2 + j] = (q(j) & 0xf) | ((q(j + 16) & 0xf) << 4);
  }
  return out;
}

export function q4_1(x: ArrayLike<number>): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 20);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let min = Infinity, max = -Infinity;
    // Strict comparisons, as ggml's reference: the first of -0/+0 wins.
    for (let j = 0; j < 32; j++) {
      if (x[b * 32 + j]! < min) min = x[b * 32 + j]!;
      if (x[b * 32 + j]! > max) max = x[b * 32 + j]!;
    }
    const d = fr(fr(max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    dv.setUint16(b * 20, f16Bits(d), true);
    dv.setUint16(b * 20 + 2, f16Bits(min), true);
    const q = (j: number) => Math.min(15, truncToI8(fr(fr(fr(x[b * 32 + j]! - min) * id) + 0.5)));
    for (let j = 0; j < 16; j++) out[b * 20 + 4 + j] = (q(j) & 0xf) | ((q(j + 16) & 0xf) << 4);
  }
  return out;
}

export function dequantGgml(type: 'Q8_0' | 'Q4_0' | 'Q4_1', data: Uint8Array, n: number): Float32Array {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Float32Array(n);
  const bs = { Q8_0: 34, Q4_0: 18, Q4_1: 20 }[type];
  for (let b = 0; b < n / 32; b++) {
    const o = b * bs;
    const d = f16Value(dv.getUint16(o, true));
    for (let j = 0; j < 32; j++) {
      if (type === 'Q8_0') out[b * 32 + j] = fr(dv.getInt8(o + 2 + j) * d);
      else {
        const byte = data[o + (type === 'Q4_0' ? 2 : 4) + (j % 16)]!;
        const q = j < 16 ? byte & 0xf : byte >> 4;
        out[b * 32 + j] = type === 'Q4_0' ? fr((q - 8) * d) : fr(fr(q * d) + f16Value(dv.getUint16(o + 2, true)));
      }
    }
  }
  return out;
}

export type ScaleDtype = 'F16' | 'BF16' | 'F32';
const storeScale = (s: number, t: ScaleDtype): [number, number] =>
  t === 'F16' ? [f16Bits(s), f16Value(f16Bits(s))] : t === 'BF16' ? [bf16Bits(s), bf16Value(bf16Bits(s))] : [0, s];

export interface IntQuantized {
  /** Signed quantized values, one per weight. */
  q: Int8Array;
  /** Scale values as stored (decoded), one per group. */
  scales: Float32Array;
  /** Raw scale bits for F16/BF16. */
  scaleBits: Uint16Array;
  zeros: Int8Array;
}

/** compressed-tensors int quantization of a rows x cols matrix with groups of g. */
export function intQuant(x: ArrayLike<number>, rows: number, cols: number, g: number, bits: number, sym: boolean, scaleDtype: ScaleDtype): IntQuantized {
  const groups = cols / g;
  const qmin = -(2 ** (bits - 1)), qmax = 2 ** (bits - 1) - 1, levels = 2 ** bits - 1;
  const out: IntQuantized = { q: new Int8Array(rows * cols), scales: new Float32Array(rows * groups), scaleBits: new Uint16Array(rows * groups), zeros: new Int8Array(rows * groups) };
  for (let r = 0; r < rows; r++)
    for (let gi = 0; gi < groups; gi++) {
      const base = r * cols + gi * g;
      let s: number, lo = 0, hi = 0;
      if (sym) {
        let amax = 0;
        for (let j = 0; j < g; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
        s = fr(amax / (levels / 2));
      } else {
        for (let j = 0; j < g; j++) {
          lo = Math.min(lo, x[base + j]!);
          hi = Math.max(hi, x[base + j]!);
        }
        s = fr(fr(hi - lo) / levels);
      }
      const [bitsS, sq] = storeScale(s, scaleDtype);
      out.scales[r * groups + gi] = sq;
      out.scaleBits[r * groups + gi] = bitsS;
      let id = sq ? fr(1 / sq) : 0;
      if (!Number.isFinite(id)) id = 0;
      let zp = 0;
      if (!sym) zp = Math.min(qmax, Math.max(qmin, roundHalfEven(fr(qmin - fr(lo * id)))));
      out.zeros[r * groups + gi] = zp;
      for (let j = 0; j < g; j++) out.q[base + j] = Math.min(qmax, Math.max(qmin, roundHalfEven(fr(x[base + j]! * id)) + zp));
    }
  return out;
}

/** Packs signed values LSB-first into little-endian int32 words along each row (compressed-tensors). */
export function packRows(q: Int8Array, rows: number, cols: number, bits: number): Uint8Array {
  const perWord = 32 / bits;
  const wordsPerRow = Math.ceil(cols / perWord);
  const words = new Uint32Array(rows * wordsPerRow);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < cols; k++) {
      const u = (q[r * cols + k]! + 2 ** (bits - 1)) >>> 0;
      words[r * wordsPerRow + Math.floor(k / perWord)]! |= u << ((k % perWord) * bits);
    }
  return new Uint8Array(words.buffer);
}
