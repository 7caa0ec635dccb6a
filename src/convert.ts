/** Element conversions for tensors that are kept (not quantized) but change dtype, and for checks. */
import { QuantkitError } from './errors.js';
import type { Dtype } from './safetensors/dtypes.js';

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function bf16ToF32(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
let f16Table: Float32Array | undefined;

/** Decodes F32/F16/BF16 little-endian bytes to float32 (exact: every such value is a float32). */
export function toFloat32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new QuantkitError('ERR_PLAN', `cannot convert ${dtype} to F32`);
  const size = dtype === 'F32' ? 4 : 2;
  const n = Math.floor(bytes.length / size);
  if (LITTLE_ENDIAN) {
    // Typed-array views over an aligned copy: an order of magnitude faster than DataView per element.
    const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
    if (dtype === 'F32') return new Float32Array(aligned.buffer.slice(aligned.byteOffset, aligned.byteOffset + n * 4));
    const h = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    if (dtype === 'BF16') {
      const out = new Int32Array(n);  // h << 16 is a (possibly negative) int32: no conversion on store
      for (let i = 0; i < n; i++) out[i] = h[i]! << 16;
      return new Float32Array(out.buffer);
    }
    f16Table ??= Float32Array.from({ length: 65536 }, (_, i) => f16ToF32(i));
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = f16Table[h[i]!]!;
    return out;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (dtype === 'F32') for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  else {
    const conv = dtype === 'F16' ? f16ToF32 : bf16ToF32;
    for (let i = 0; i < n; i++) out[i] = conv(dv.getUint16(i * 2, true));
  }
  return out;
}

/** float32 → IEEE half, rounding to nearest even; NaN if the value does not fit (the caller refuses). */
export function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let man = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0
    man |= 0x800000;
    const shift = 14 - e;
    let h = man >>> shift;
    const rem = man & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = sign | (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return h;
}

/** float32 → bfloat16, rounding to nearest even. */
export function f32ToBf16(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Re-encodes a kept tensor in another dtype: widening to F32 is exact; narrowing to F16/BF16 rounds to
 * nearest even and refuses values F16 cannot hold (naming `where`).
 */
export function convertTensor(bytes: Uint8Array, from: Dtype, to: Dtype, where: { file?: string; tensor?: string } = {}): Uint8Array {
  if (from === to) return bytes;
  const f = toFloat32(bytes, from);
  if (to === 'F32') return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  if (to !== 'F16' && to !== 'BF16') throw new QuantkitError('ERR_PLAN', `conversion ${from} -> ${to} is not supported`, where);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) {
    const v = f[i]!;
    if (to === 'F16') {
      const h = f32ToF16(v);
      if ((h & 0x7c00) === 0x7c00 && Number.isFinite(v))
        throw new QuantkitError('ERR_SCALE_OVERFLOW', `value ${v} at element ${i} does not fit F16; use --gguf-type F32 or BF16`, where);
      out[i] = h;
    } else out[i] = f32ToBf16(v);
  }
  return new Uint8Array(out.buffer);
}
