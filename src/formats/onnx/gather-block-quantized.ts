/**
 * ONNX Runtime's com.microsoft GatherBlockQuantized encoding of a token embedding [vocab, hidden]
 * (uint8 data, `bits` 4 or 8, gather_axis 0, quantize_axis 1): data uint8 [vocab, hidden·bits/8] packed
 * low bits first along the row, scales [vocab, hidden/block], zero points (asymmetric only) uint8
 * [vocab, ceil(blocks·bits/8)], default 2^(bits-1). These are MatMulNBits' bytes (matmul-nbits.ts) for
 * a row of whole blocks, under other dimensions: the same kernels write them, and a tied embedding and
 * output head share one copy in the external data file. The output has the row's length, so a row that
 * is not a whole number of blocks (which MatMulNBits pads) cannot be stored this way.
 */
import type { KernelSpec } from '../../native.js';
import { type EncodedTensor, matMulNBitsTensors } from './matmul-nbits.js';

export function gatherBlockQuantizedTensors(rows: number, cols: number, spec: KernelSpec): EncodedTensor[] {
  return matMulNBitsTensors(rows, cols, spec).map((t) => (t.role === 'data' ? { ...t, dims: [rows, (cols * spec.bits) / 8] } : t));
}

/** GatherBlockQuantized needs whole blocks along the embedding row. */
export function gatherable(cols: number, block: number): boolean {
  return cols % block === 0;
}
