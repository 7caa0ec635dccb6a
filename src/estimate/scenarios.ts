/**
 * Inference memory per GPU, component by component (never one multiplier): weights, KV cache, one
 * layer's prefill working set, logits, bitsandbytes dequantization scratch and runtime workspaces.
 * Fine-tuning lives in finetune.ts.
 */
import type { ModelDims } from './architectures.js';
import { type Attention, inferenceLayerBytes } from './activations.js';
import type { ParallelLayout } from './parallel.js';

export const GiB = 2 ** 30;

export type Components = Record<string, number>;

export interface InferenceInputs {
  dims: ModelDims;
  weights: number;
  /** Parameters of the largest quantized layer (0 when weights are not quantized by bitsandbytes). */
  dequantScratchParams: number;
  activationBytes: number;
  kvBytes: number;
  batch: number;
  seq: number;
  attention: Attention;
  /** Logits for every prompt position (older transformers) or the last one only. */
  logitsAllPositions: boolean;
  layout: ParallelLayout;
}

/** Workspaces (cuBLAS, the caching allocator's rounding): bf16 short-prompt runs land 0.05-0.2 GB above weights. */
export const RUNTIME_BUFFERS = Math.round(0.1 * GiB);

export function inferenceComponents(x: InferenceInputs): Components {
  const d = x.dims;
  const split = x.layout.tp * x.layout.pp;
  const c: Components = {};
  c.weights = Math.ceil(x.weights / split);
  if (d.decoder) {
    const kvHeadsPerGpu = Math.max(1, Math.ceil(d.kvHeads / x.layout.tp));
    c.kv_cache = 2 * Math.ceil(d.layers / x.layout.pp) * kvHeadsPerGpu * d.headDim * x.seq * x.batch * x.kvBytes;
  }
  c.activations = Math.ceil(inferenceLayerBytes(d, x.batch * x.seq, x.batch, x.seq, x.activationBytes, x.attention, x.layout.tp));
  c.logits = (x.logitsAllPositions ? x.batch * x.seq : x.batch) * d.vocab * x.activationBytes + x.batch * d.vocab * 4;
  // bitsandbytes dequantizes a whole weight to 16 bits for prompt matmuls, and quantizing on load holds a
  // 16-bit copy of the weight being converted: two 16-bit copies of the largest quantized layer.
  if (x.dequantScratchParams) c.dequant_scratch = 2 * 2 * x.dequantScratchParams;
  if (x.batch > 0) c.runtime_buffers = RUNTIME_BUFFERS; // nothing ran yet when only loading
  return c;
}
