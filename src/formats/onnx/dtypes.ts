/**
 * The ONNX variants quantkit writes, named as transformers.js names its `dtype` option, and the file
 * each one is stored in (transformers.js maps the dtype to this file name when it loads a model):
 *  fp32  model.onnx            every weight float32
 *  fp16  model_fp16.onnx       every weight and activation float16 (logits float32)
 *  q8    model_quantized.onnx  projections and embedding 8-bit (MatMulNBits / GatherBlockQuantized), float32 activations
 *  q4    model_q4.onnx         the same in 4 bits
 *  q4f16 model_q4f16.onnx      4-bit weights, float16 activations and scales
 */
import type { FloatDtype } from '../../safetensors/dtypes.js';

export type OnnxDtype = 'fp32' | 'fp16' | 'q8' | 'q4' | 'q4f16';
export const ONNX_DTYPES: OnnxDtype[] = ['fp32', 'fp16', 'q8', 'q4', 'q4f16'];

const SUFFIX: Record<OnnxDtype, string> = { fp32: '', fp16: '_fp16', q8: '_quantized', q4: '_q4', q4f16: '_q4f16' };

/** The .onnx file transformers.js loads for this dtype (inside the model's onnx/ folder). */
export function onnxModelFile(d: OnnxDtype): string {
  return `model${SUFFIX[d]}.onnx`;
}

/** The float type of activations, KV cache and scales. */
export function activationDtype(d: OnnxDtype): Extract<FloatDtype, 'F32' | 'F16'> {
  return d === 'fp16' || d === 'q4f16' ? 'F16' : 'F32';
}

/** Bits of the quantized weights, or null for the float variants. */
export function dtypeBits(d: OnnxDtype): 4 | 8 | null {
  return d === 'q8' ? 8 : d === 'q4' || d === 'q4f16' ? 4 : null;
}

/** --onnx-dtype, else q4 or q8 from --bits. */
export function resolveOnnxDtype(o: { onnxDtype?: OnnxDtype | undefined; bits: 4 | 8 }): OnnxDtype {
  return o.onnxDtype ?? (o.bits === 8 ? 'q8' : 'q4');
}
