/**
 * Test-side readers that share no code with src/: a bare safetensors parser (JSON.parse + slicing)
 * and an unpacker for compressed-tensors pack-quantized weights written from its description.
 */
import { readFileSync } from 'node:fs';
import { bf16Value, f16Value } from './reference-quant.js';

export interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

export function readSafetensorsPlain(path: string): { tensors: Map<string, RawTensor>; metadata: Record<string, string> | undefined } {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors = new Map<string, RawTensor>();
  let metadata: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') {
      metadata = v as unknown as Record<string, string>;
      continue;
    }
    tensors.set(k, { dtype: v.dtype, shape: v.shape, bytes: new Uint8Array(buf.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1])) });
  }
  return { tensors, metadata };
}

export function decodeFloats(t: RawTensor): Float64Array {
  const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const size = t.dtype === 'F32' ? 4 : 2;
  const out = new Float64Array(t.bytes.length / size);
  for (let i = 0; i < out.length; i++)
    out[i] = t.dtype === 'F32' ? dv.getFloat32(i * 4, true) : t.dtype === 'BF16' ? bf16Value(dv.getUint16(i * 2, true)) : f16Value(dv.getUint16(i * 2, true));
  return out;
}

function int32s(t: RawTensor): Int32Array {
  return new Int32Array(t.bytes.slice().buffer);
}

/** Dequantizes `<name>_packed/_scale/_zero_point/_shape` back to a flat float array. */
export function unpackCompressed(tensors: Map<string, RawTensor>, name: string, bits: number): { shape: number[]; values: Float64Array; group: number } {
  const packed = tensors.get(`${name}_packed`)!;
  const scale = tensors.get(`${name}_scale`)!;
  const shape = Array.from(int32s(tensors.get(`${name}_shape`)!));
  const cols = shape.length === 4 ? shape[1]! * shape[2]! * shape[3]! : shape[shape.length - 1]!;
  const rows = shape.reduce((a, b) => a * b, 1) / cols;
  const perWord = 32 / bits;
  const words = int32s(packed);
  const wordsPerRow = packed.shape[1]!;
  const scales = decodeFloats(scale);
  const groups = scale.shape[1]!;
  const group = cols / groups;
  const zpT = tensors.get(`${name}_zero_point`);
  const zpWords = zpT ? int32s(zpT) : undefined;
  const half = 2 ** (bits - 1), mask = 2 ** bits - 1;
  const values = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < cols; k++) {
      const w = words[r * wordsPerRow + Math.floor(k / perWord)]!;
      const q = ((w >>> ((k % perWord) * bits)) & mask) - half;
      const g = Math.floor(k / group);
      const zp = zpWords ? ((zpWords[Math.floor(r / perWord) * groups + g]! >>> ((r % perWord) * bits)) & mask) - half : 0;
      values[r * cols + k] = (q - zp) * scales[r * groups + g]!;
    }
  return { shape, values, group };
}

export function relRmse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e2 = 0, x2 = 0;
  for (let i = 0; i < a.length; i++) {
    e2 += (a[i]! - b[i]!) ** 2;
    x2 += b[i]! ** 2;
  }
  return Math.sqrt(e2 / x2);
}
