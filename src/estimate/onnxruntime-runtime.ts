/**
 * What onnxruntime-node allocates (CPU execution provider) to run a decoder quantkit exports as ONNX,
 * for a context of `tokens` processed as one prompt the way transformers.js does (the prefill is the
 * peak: every position's logits and attention scores at once):
 *  - weights: the external data file, read into memory at session creation (MatMulNBits repacks its
 *    weights and frees the originals; a GatherBlockQuantized embedding may stay memory-mapped, so rows
 *    never read are not resident: the prediction counts them, an upper bound);
 *  - runtime: the session's own fixed cost (library pages touched, graph, kernels, one intra-op thread):
 *    27 MiB, between what two hosts of the same kind measured (27.1-30 MiB on an AVX-512 Zen 5 over
 *    several days, 24.0-25.4 MiB on the CI host), likely because onnxruntime picks other kernels there;
 *  - kv_cache: the present keys and values, layers x 2 x kv_heads x head_dim x tokens, activation type;
 *  - logits: tokens x vocab float32 (the graph returns every position's);
 *  - activations: ONNX Runtime's arena at its peak: per token the hidden-width tensors around a layer,
 *    q/k/v and the MLP's gate, up and product (activation type), plus the attention scores
 *    heads x tokens x tokens float32 (three copies in the plain-operator attention used for head sizes
 *    GroupQueryAttention does not take: scores, masked, softmax).
 * Checked against onnxruntime-node's resident memory on the bundled models (test/onnx/runtime-memory.test.ts)
 * and a 423 M-parameter synthetic Phi-3 (docs/estimates.md).
 */
import type { ModelDims } from './architectures.js';

export const ORT_RUNTIME_BYTES = 27 * 2 ** 20;

export interface OnnxRuntimeMemory {
  weights: number;
  runtime: number;
  kv_cache: number;
  logits: number;
  activations: number;
  total: number;
}

export function onnxRuntimeMemory(dims: ModelDims, weightBytes: number, o: { tokens: number; activationBytes: 2 | 4 }): OnnxRuntimeMemory {
  const t = o.tokens;
  const a = o.activationBytes;
  const kvWidth = dims.kvHeads * dims.headDim;
  const kv_cache = dims.layers * 2 * kvWidth * t * a;
  const logits = t * dims.vocab * 4;
  const perToken = (8 * dims.hidden + dims.heads * dims.headDim + 2 * kvWidth + 4 * dims.intermediate) * a;
  const scoreCopies = dims.headDim % 16 === 0 ? 1 : 3;
  const activations = t * perToken + scoreCopies * dims.heads * t * t * 4;
  const total = weightBytes + ORT_RUNTIME_BYTES + kv_cache + logits + activations;
  return { weights: weightBytes, runtime: ORT_RUNTIME_BYTES, kv_cache, logits, activations, total };
}
