/**
 * What llama.cpp allocates for a GGUF file quantkit writes, on the CPU backend:
 *  - model buffer: every tensor's data (llama_model_size), exactly the planner's per-tensor bytes;
 *  - KV cache: n_ctx (rounded up to 256 cells) × layers × (k + v width) × 2 bytes (f16 cache);
 *  - output buffer: n_vocab × 4 bytes per output row kept (one sequence);
 *  - compute buffer: the scheduler's worst-case graph for one micro-batch with flash attention. ggml's
 *    allocator reuses freed tensors, so it is the larger of two moments: the feed-forward block (gate,
 *    up and their product, 3·n_ff, beside ~8 hidden-width f32 tensors) and the output (n_vocab logits and
 *    two hidden-width tensors), per token of the micro-batch, in f32.
 * Derived from the graph, checked against llama.cpp's own load log on the bundled models (test/gguf).
 */
import type { ModelDims } from './architectures.js';

export interface LlamaCppMemory {
  model: number;
  kv_cache: number;
  output: number;
  compute: number;
  total: number;
}

export function llamaCppMemory(dims: ModelDims, tensorBytes: number, o: { contextSize: number; batchSize?: number; kvBytes?: number }): LlamaCppMemory {
  const cells = Math.ceil(o.contextSize / 256) * 256;
  const ubatch = Math.min(o.batchSize ?? 512, o.contextSize);
  const kvWidth = dims.kvHeads * dims.headDim;
  const kv_cache = cells * dims.layers * 2 * kvWidth * (o.kvBytes ?? 2);
  const output = dims.vocab * 4;
  const ffn = 3 * dims.intermediate * dims.expertsPerToken + 8 * dims.hidden;
  const head = dims.vocab + 2 * dims.hidden;
  const compute = ubatch * 4 * Math.max(ffn, head);
  return { model: tensorBytes, kv_cache, output, compute, total: tensorBytes + kv_cache + output + compute };
}
