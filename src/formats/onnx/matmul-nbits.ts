/**
 * ONNX Runtime's com.microsoft MatMulNBits weight encoding, for a Hugging Face [N, K] weight (N outputs,
 * K inputs; blocks run along K, the row):
 *  - B: uint8 [N, ceil(K/block), block·bits/8], codes low bits first (4-bit: element 2j in the low
 *    nibble of byte j); a row that is not a whole number of blocks is padded with codes of zero;
 *  - scales: [N, ceil(K/block)] in the activations' float type;
 *  - zero_points (asymmetric only): uint8 [N, ceil(blocks·bits/8)], packed like B; absent, the operator
 *    uses 2^(bits-1).
 * Dequantized weight = (code - zero_point) · scale.
 *
 * The compressed-tensors kernels (scheme int_sym / int_asym, native/src/kernels) already write exactly
 * this: codes q + 2^(bits-1) packed least-significant bits first in little-endian 32-bit words, which
 * for a row of whole blocks is byte for byte B's layout; one scale per group; and (asym) a signed zero
 * point z with code zero point z + 2^(bits-1). So these kernels, their SIMD twins and every method
 * (rtn, search, gptq) are this encoding's kernels: only the zero points are repacked here. Rows are
 * padded to whole blocks with zeros before quantizing (src/quant/row-padding.ts): zero is exactly
 * representable in both schemes (the symmetric code 0, the asymmetric range always holds 0), so padded
 * codes dequantize to exactly 0 and the real columns get the scales they would get alone.
 */
import type { KernelSpec, QuantizedParts } from '../../native.js';
import type { FloatDtype } from '../../safetensors/dtypes.js';
import { ONNX_TYPE_BYTES, OnnxType, type OnnxTypeId } from './proto.js';

/** One initializer of an encoded weight: its role in the operator, type and dimensions. */
export interface EncodedTensor {
  role: 'data' | 'scales' | 'zero_points';
  type: OnnxTypeId;
  dims: number[];
}

export const FLOAT_TYPES: Record<FloatDtype, OnnxTypeId> = { F32: OnnxType.FLOAT, F16: OnnxType.FLOAT16, BF16: OnnxType.BFLOAT16 };

/** A row length rounded up to whole blocks. */
export function paddedRow(k: number, block: number): number {
  return Math.ceil(k / block) * block;
}

/** The kernel scheme that writes this encoding's codes, scales and zero points. */
export function kernelScheme(mode: 'sym' | 'asym'): 'int_sym' | 'int_asym' {
  return mode === 'asym' ? 'int_asym' : 'int_sym';
}

/** MatMulNBits accepts any bit width the kernels write (4, 8) and power-of-two blocks of at least 16. */
export function validBlock(block: number): boolean {
  return Number.isSafeInteger(block) && block >= 16 && (block & (block - 1)) === 0;
}

export function tensorBytes(t: EncodedTensor): number {
  return t.dims.reduce((a, b) => a * b, 1) * ONNX_TYPE_BYTES[t.type];
}

/** The initializers of a quantized [rows, paddedCols] weight. */
export function matMulNBitsTensors(rows: number, paddedCols: number, spec: KernelSpec): EncodedTensor[] {
  const blocks = paddedCols / spec.group;
  const out: EncodedTensor[] = [
    { role: 'data', type: OnnxType.UINT8, dims: [rows, blocks, (spec.group * spec.bits) / 8] },
    { role: 'scales', type: FLOAT_TYPES[spec.scaleDtype], dims: [rows, blocks] },
  ];
  if (spec.scheme === 'int_asym') out.push({ role: 'zero_points', type: OnnxType.UINT8, dims: [rows, Math.ceil((blocks * spec.bits) / 8)] });
  return out;
}

export function encodedBytes(tensors: EncodedTensor[]): number {
  return tensors.reduce((s, t) => s + tensorBytes(t), 0);
}

/** "MatMulNBits int4 b32 sym", with the method when it is not plain rounding. */
export function encodingLabel(op: string, spec: KernelSpec): string {
  return `${op} int${spec.bits} b${spec.group} ${spec.scheme === 'int_asym' ? 'asym' : 'sym'}${spec.method && spec.method !== 'rtn' ? ` ${spec.method}` : ''}`;
}

/** Kernel zero points [rows, groups] (signed) as the operator's uint8 codes packed along each row. */
export function packZeroPoints(zeros: Int8Array, rows: number, groups: number, bits: 4 | 8): Uint8Array {
  const offset = 1 << (bits - 1);
  if (bits === 8) return Uint8Array.from(zeros, (z) => z + offset);
  const perRow = Math.ceil(groups / 2);
  const out = new Uint8Array(rows * perRow);
  for (let r = 0; r < rows; r++)
    for (let g = 0; g < groups; g++) out[r * perRow + (g >> 1)]! |= ((zeros[r * groups + g]! + offset) & 0xf) << ((g & 1) * 4);
  return out;
}

/** The inverse of packZeroPoints. */
export function unpackZeroPoints(packed: Uint8Array, rows: number, groups: number, bits: 4 | 8): Int8Array {
  const offset = 1 << (bits - 1);
  const out = new Int8Array(rows * groups);
  if (bits === 8) {
    for (let i = 0; i < out.length; i++) out[i] = packed[i]! - offset;
    return out;
  }
  const perRow = Math.ceil(groups / 2);
  for (let r = 0; r < rows; r++)
    for (let g = 0; g < groups; g++) out[r * groups + g] = ((packed[r * perRow + (g >> 1)]! >> ((g & 1) * 4)) & 0xf) - offset;
  return out;
}

/** The kernel's parts as the initializers' bytes, in matMulNBitsTensors order. */
export function encodeParts(parts: QuantizedParts, rows: number, paddedCols: number, spec: KernelSpec): Uint8Array[] {
  const out = [parts.data, parts.scales!];
  if (spec.scheme === 'int_asym') out.push(packZeroPoints(parts.zeros!, rows, paddedCols / spec.group, spec.bits as 4 | 8));
  return out;
}
