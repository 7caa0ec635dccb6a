/**
 * Rows padded to a whole number of quantization blocks (ONNX Runtime's MatMulNBits stores a row that is
 * not a whole number of blocks with its last block padded). The padding is zeros: every integer scheme
 * represents 0 exactly, and zeros change neither a group's scale (the symmetric absmax, the asymmetric
 * range that always holds 0) nor any least-squares sum of the search, so the real columns are quantized
 * exactly as they would be alone and the padded codes dequantize to 0. GPTQ's statistics are padded
 * the same way: padded columns are uncorrelated with the real ones and get the mean of the real diagonal,
 * so the damping (a fraction of that mean) and the real columns' factor are unchanged.
 */
import { dtypeSize, type Dtype } from '../safetensors/dtypes.js';

/** Zero-pads every row of a row-major [rows, cols] tensor to `paddedCols` elements. */
export function padRows(bytes: Uint8Array, dtype: Dtype, rows: number, paddedCols: number, alloc: (n: number) => Uint8Array = (n) => new Uint8Array(n)): Uint8Array {
  const size = dtypeSize(dtype);
  const rowBytes = bytes.length / rows;
  const out = alloc(rows * paddedCols * size);
  if (paddedCols * size !== rowBytes) out.fill(0); // the padding (a reused buffer holds old bytes)
  for (let r = 0; r < rows; r++) out.set(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), r * paddedCols * size);
  return out;
}

/** The first `cols` of every `paddedCols`-wide row. */
export function unpadRows(values: Float32Array, rows: number, paddedCols: number, cols: number): Float32Array {
  if (paddedCols === cols) return values;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) out.set(values.subarray(r * paddedCols, r * paddedCols + cols), r * cols);
  return out;
}

/** A per-column importance extended with zeros to `cols` columns. */
export function padColumns(v: Float32Array, cols: number): Float32Array {
  if (v.length >= cols) return v;
  const out = new Float32Array(cols);
  out.set(v);
  return out;
}

/** An n x n input Hessian extended to cols x cols: zero cross terms, the mean real diagonal on the new diagonal. */
export function padHessian(h: Float32Array, cols: number): Float32Array {
  const n = Math.round(Math.sqrt(h.length));
  if (n >= cols) return h;
  let mean = 0;
  for (let j = 0; j < n; j++) mean += h[j * n + j]!;
  mean /= n;
  const out = new Float32Array(cols * cols);
  for (let i = 0; i < n; i++) out.set(h.subarray(i * n, (i + 1) * n), i * cols);
  for (let j = n; j < cols; j++) out[j * cols + j] = mean;
  return out;
}
