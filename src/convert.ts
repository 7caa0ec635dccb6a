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

/** Decodes F32/F16/BF16 little-endian bytes to float32 (exact: every such value is a float32). */
export function toFloat32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') {
    const out = new Float32Array(bytes.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
    return out;
  }
  if (dtype === 'F16' || dtype === 'BF16') {
    const out = new Float32Array(bytes.length / 2);
    const conv = dtype === 'F16' ? f16ToF32 : bf16ToF32;
    for (let i = 0; i < out.length; i++) out[i] = conv(dv.getUint16(i * 2, true));
    return out;
  }
  throw new QuantkitError('ERR_PLAN', `cannot convert ${dtype} to F32`);
}

/** Re-encodes a kept tensor in another dtype; only widening to F32 is ever needed (lossless). */
export function convertTensor(bytes: Uint8Array, from: Dtype, to: Dtype): Uint8Array {
  if (from === to) return bytes;
  if (to !== 'F32') throw new QuantkitError('ERR_PLAN', `conversion ${from} -> ${to} is not supported`);
  const f = toFloat32(bytes, from);
  return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
}
