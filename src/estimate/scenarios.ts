/**
 * The two memory scenarios, component by component (never one multiplier): inference (weights, KV
 * cache, activations, logits, dequantization scratch, runtime) and fine-tuning (weights, master copy,
 * gradients, optimizer states, activations, logits and loss, communication buffers), per GPU.
 * The peak is the static part plus the larger of the forward-end working set (activations and logits)
 * and the backward-end one (gradients): with `zero_grad(set_to_none=True)`, PyTorch's default since 2.0,
 * gradients appear while activations are being freed, so the two are not held together.
 */
import type { ModelDims } from './architectures.js';
import { type Attention, checkpointedBytesPerToken, inferenceLayerBytes, layerBytesPerToken } from './activations.js';
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

export type Method = 'full' | 'lora' | 'qlora';
export type Precision = 'mixed' | 'bf16' | 'fp16' | 'fp32';
export type Optimizer = 'adamw' | 'adamw8bit' | 'sgd' | 'sgd-momentum';
/**
 * Whose accounting of model states: 'pytorch' (what PyTorch DDP/FSDP allocate, DDP's gradient buckets
 * included), 'zero-paper' (the ZeRO paper's analytic 2+2+12 bytes, no framework buffers), 'deepspeed'
 * (DeepSpeed's estimator: an fp32 gradient partition beside the optimizer, full fp16 gradients under
 * ZeRO-2, four bytes per parameter of the largest layer gathered under ZeRO-3).
 */
export type Convention = 'pytorch' | 'zero-paper' | 'deepspeed';

export interface FinetuneInputs {
  dims: ModelDims | null;
  params: number;
  trainable: number;
  /** Bytes of the weights as loaded (full: 16- or 32-bit; LoRA: frozen base; QLoRA: NF4 base). */
  weights: number;
  /** Bytes per trainable parameter of its working copy (LoRA adapters are separate tensors). */
  adapterBytes: number;
  largestTensorParams: number;
  dequantScratchParams: number;
  method: Method;
  precision: Precision;
  optimizer: Optimizer;
  convention: Convention;
  batch: number;
  seq: number;
  gradCheckpointing: boolean;
  attention: Attention;
  dropout: boolean;
  chunkedLoss: boolean;
  compile: boolean;
  optimizerInBackward: boolean;
  offloadActivations: boolean;
  gradientsPersist: boolean;
  layout: ParallelLayout;
}

export interface FinetuneResult {
  components: Components;
  /** Components held for the whole step. */
  static: string[];
  forwardPhase: string[];
  /** Forward/backward-start components never alive together: the largest counts. */
  forwardLargestOf: string[];
  backwardPhase: string[];
}

export function finetuneComponents(x: FinetuneInputs): FinetuneResult {
  const L = x.layout;
  const split = L.tp * L.pp; // model parallelism divides every parameter tensor (norms aside: negligible)
  const zero = L.dataParallel.startsWith('zero') ? Number(L.dataParallel.slice(4)) : 0;
  const shardOs = zero >= 1 ? L.dp : 1;
  const shardG = zero >= 2 && !(x.convention === 'deepspeed' && zero === 2) ? L.dp : 1;
  const shardP = zero >= 3 ? L.dp : 1;
  const mixed = x.precision === 'mixed';
  const wordBytes = x.precision === 'fp32' ? 4 : 2;
  const t = x.trainable;
  const c: Components = {};
  const stat: string[] = [];
  const fwd: string[] = [];
  const bwd: string[] = [];
  const alternatives: string[] = [];
  const put = (name: string, bytes: number, phase: string[]) => {
    if (bytes > 0) {
      c[name] = Math.ceil(bytes);
      phase.push(name);
    }
  };

  if (x.method === 'full') put('weights', (x.params * wordBytes) / split / shardP, stat);
  else {
    put('base_weights', x.weights / split, stat);
    put('adapter_weights', (t * x.adapterBytes) / split / shardP, stat);
  }
  if (mixed) put('master_weights_fp32', (t * 4) / split / shardOs, stat);
  const stateBytes = x.optimizer === 'adamw' ? (mixed || x.precision === 'fp32' ? 8 : 2 * wordBytes)
    : x.optimizer === 'adamw8bit' ? 2 + 2 * (4 / 256) // two u8 states + an fp32 absmax per 256-block each
    : x.optimizer === 'sgd-momentum' ? (mixed ? 4 : wordBytes) : 0;
  put('optimizer_states', (t * stateBytes) / split / shardOs, stat);
  const gradBytes = x.method === 'full' ? wordBytes : x.adapterBytes;
  // DeepSpeed's ZeRO-3 reduces 16-bit gradients straight into the fp32 partition.
  const grads = x.convention === 'deepspeed' && zero === 3 && mixed ? 0 : (t * gradBytes) / split / shardG;
  if (x.convention === 'deepspeed' && mixed) put('gradients_fp32_partition', (t * 4) / split / shardOs, stat);
  if (x.convention === 'pytorch' && L.dataParallel === 'ddp' && L.dp > 1) put('ddp_gradient_buckets', (t * gradBytes) / split, stat);
  if (zero >= 3) put('zero3_gathered_layer', (x.convention === 'deepspeed' ? 4 : 2 * wordBytes) * x.largestTensorParams, stat);

  if (x.dims && x.batch > 0) {
    const d = x.dims;
    const tokens = x.batch * x.seq;
    const opts = { bytes: wordBytes, attention: x.attention, dropout: x.dropout, softmaxFp32: true, tensorParallel: L.tp, fusedMlp: x.compile };
    const full = layerBytesPerToken(d, x.seq, opts) * tokens;
    // Under 1F1B the first stage holds pp micro-batches of its layers/pp layers: all layers' worth of one micro-batch.
    const layers = d.layers;
    // Without recomputation every layer's tensors are alive when the logits are computed. With full
    // checkpointing only layer inputs are kept; the loss (start of backward) and one layer's recomputed
    // tensors (during backward) are never alive together, so the larger of the two counts.
    const vocabShard = d.vocab / L.tp;
    // The loss upcasts logits to fp32 and keeps log-softmax for backward; its gradient is fp32 too.
    // Chunked cross-entropy (8 chunks) keeps only the 16-bit logits; uncompiled, one chunk's fp32 copies
    // exist at a time, compiled the loss kernel fuses them away.
    const logits = !d.decoder ? 0 : x.chunkedLoss ? tokens * vocabShard * wordBytes + (x.compile ? 0 : (tokens / 8) * vocabShard * 12) : tokens * vocabShard * (wordBytes + 8);
    if (!x.gradCheckpointing && !x.offloadActivations) {
      put('activations', layers * full, fwd);
      put('logits_and_loss', logits, fwd);
    } else {
      // Offloading moves the kept layer inputs to host memory.
      if (!x.offloadActivations) put('activation_checkpoints', layers * checkpointedBytesPerToken(d, wordBytes) * tokens, fwd);
      c.logits_and_loss = Math.ceil(logits);
      c.recompute_working_set = Math.ceil(full);
      alternatives.push('logits_and_loss', 'recompute_working_set');
    }
    // The embedding/output gradient is produced first in backward, next to the logits' gradient.
    if (x.method === 'full') put('output_layer_gradient', (d.vocab * d.hidden * gradBytes) / split / shardG, fwd);
    if (x.method === 'qlora' && x.dequantScratchParams) put('dequant_scratch', 2 * 2 * x.dequantScratchParams / split, fwd);
  }
  // PyTorch < 2.0 (and the Trainer of that time) zeroed gradients in place: they live through the forward.
  // An 8-bit optimizer dequantizes a tensor's two states to fp32 for its update: sized by the largest.
  if (x.optimizer === 'adamw8bit') put('optimizer_step_fp32_states', x.largestTensorParams * 8, bwd);
  put('gradients', x.optimizerInBackward ? x.largestTensorParams * gradBytes : grads, x.gradientsPersist && !x.optimizerInBackward ? stat : bwd);
  if (x.batch > 0 && x.convention === 'pytorch') {
    c.runtime_buffers = RUNTIME_BUFFERS;
    stat.push('runtime_buffers');
  }
  return { components: c, static: stat, forwardPhase: fwd, forwardLargestOf: alternatives, backwardPhase: bwd };
}

export function finetunePeak(r: FinetuneResult): number {
  const sum = (names: string[]) => names.reduce((s, n) => s + (r.components[n] ?? 0), 0);
  const largest = Math.max(0, ...r.forwardLargestOf.map((n) => r.components[n] ?? 0));
  return sum(r.static) + Math.max(sum(r.forwardPhase) + largest, sum(r.backwardPhase));
}

export function peakRule(r: FinetuneResult): string {
  const fwd = [...r.forwardPhase, ...(r.forwardLargestOf.length ? [`max(${r.forwardLargestOf.join(', ')})`] : [])];
  return `static (${r.static.join(', ')}) + max(forward: ${fwd.join(' + ') || 'none'}; backward: ${r.backwardPhase.join(' + ')})`;
}

/** LoRA adapter parameters: r·(d_in + d_out) for every targeted matrix. */
export function loraParams(tensors: { name: string; shape: number[] }[], rank: number, targets: string[]): number {
  let n = 0;
  for (const t of tensors) {
    if (t.shape.length !== 2 || !t.name.endsWith('.weight')) continue;
    const module = t.name.slice(0, -'.weight'.length).split('.').pop()!;
    const all = targets.includes('all-linear') && !/(embed|lm_head|wte|wpe|embed_out)/.test(t.name);
    if (all || targets.includes(module)) n += rank * (t.shape[0]! + t.shape[1]!);
  }
  return n;
}
