/**
 * Quantizes a checkpoint in memory as a plan says, without writing a file: per-tensor error sums (the
 * same kernels and sums verify uses), and optionally the dequantized f32 values a runtime would compute
 * with, for the reference forward pass.
 *
 * Format transforms (GGUF's q/k row order, Gemma's norm offset) are left out: runtimes undo them, and
 * quantization groups run along rows, so a row permutation changes neither the values nor the errors.
 */
import type { Checkpoint } from '../checkpoint.js';
import { convertTensor, toFloat32 } from '../convert.js';
import { QuantkitError } from '../errors.js';
import { addon, allocateParts, type ErrorSums } from '../native.js';
import type { Calibration } from '../quant/calibration.js';
import { TensorQuantizer } from '../quant/tensor-quantizer.js';
import type { Plan } from '../plan.js';
import { transformTensor } from '../formats/gguf-arch.js';
import { unpadRows } from '../quant/row-padding.js';
import { type FloatDtype, isKernelFloat } from '../safetensors/dtypes.js';

export interface TensorError {
  name: string;
  /** e.g. "Q4_0", "IQ4_NL", "int4 g32 sym search". */
  format: string;
  params: number;
  sums: ErrorSums;
}

export interface QuantizedModel {
  /** f32 values by checkpoint tensor name (only with `keepValues`). */
  values: Map<string, Float32Array>;
  errors: TensorError[];
}

export async function quantizeInMemory(
  ckpt: Checkpoint,
  plan: Plan,
  o: { importance?: Map<string, Float32Array>; calibration?: Calibration; quantizer?: TensorQuantizer; threads?: number; keepValues?: boolean; signal?: AbortSignal } = {},
): Promise<QuantizedModel> {
  const quantizer = o.quantizer ?? new TensorQuantizer(o.importance ?? new Map(), o.calibration);
  const values = new Map<string, Float32Array>();
  const errors: TensorError[] = [];
  for (const e of plan.entries) {
    o.signal?.throwIfAborted();
    const t = e.treatment;
    const where = { file: e.tensor.file, tensor: e.tensor.name };
    if (t.kind === 'keep') {
      if (o.keepValues && isKernelFloat(e.tensor.dtype) && isKernelFloat(t.outDtype)) {
        const bytes = convertTensor(await ckpt.read(e.tensor), e.tensor.dtype, t.outDtype, where);
        values.set(e.tensor.name, toFloat32(bytes, t.outDtype));
      }
      continue;
    }
    // Rows padded to whole blocks (ONNX) are quantized padded, as written; the padding is dropped again below.
    const read = await ckpt.read(e.tensor);
    const src = t.transform?.kind === 'pad-rows' ? transformTensor(read, e.tensor.dtype, e.tensor.shape, t.transform).bytes : read;
    const srcDtype = e.tensor.dtype as FloatDtype;
    const { rows, cols } = t.view;
    const params = rows * (t.transform?.kind === 'pad-rows' ? e.tensor.shape[1]! : cols);
    const parts = allocateParts(t.spec, rows, cols);
    const status = await quantizer.quantize({ name: e.tensor.name, spec: t.spec, rows, cols, src, srcDtype, out: parts, threads: o.threads });
    if (status.nonfinite > 0) throw new QuantkitError('ERR_NONFINITE', `${status.nonfinite} NaN/Inf weight(s)`, where);
    if (status.scaleOverflow > 0) throw new QuantkitError('ERR_SCALE_OVERFLOW', `${status.scaleOverflow} group scale(s) overflow ${t.spec.scaleDtype}`, where);
    const sums = await addon().errorStats({ spec: t.spec, rows, cols, src, srcDtype, parts, threads: o.threads });
    sums.count -= rows * cols - params; // padding codes decode to 0: compared, not counted
    errors.push({ name: e.tensor.name, format: t.label, params, sums });
    if (o.keepValues) {
      const out = new Float32Array(rows * cols);
      await addon().dequantize({ spec: t.spec, rows, cols, parts, out, threads: o.threads });
      values.set(e.tensor.name, unpadRows(out, rows, cols, params / rows));
    }
  }
  return { values, errors };
}
