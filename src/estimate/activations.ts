/**
 * Activation memory of transformer layers, counted tensor by tensor as the PyTorch implementations
 * people train with (Hugging Face transformers, torchtune) save them for backward, generalising
 * Korthikanti et al. ("Reducing Activation Recomputation in Large Transformer Models") to GQA, gated
 * MLPs and dtypes. Per token and layer, at `p` bytes per activation element:
 *   norms (2):  RMSNorm keeps the fp32 upcast of its input, LayerNorm's kernel its p-byte input; both
 *               outputs feed the next linear: 2(4h + p·h) or 2(2p·h)
 *   attention:  q after rotary, k and v expanded to all query heads (repeat_kv), the attention output and
 *               its contiguous copy for o_proj: 5·p·q_dim
 *   MLP:        gated (SwiGLU): gate, up, act(gate), product: 4·p·i; plain GELU: fc1 output and act: 2·p·i
 *   dropout:    a one-byte mask per attention and MLP output (2h) when the model trains with dropout
 *   eager attention keeps a·s scores per token: the fp32 softmax output, plus its dropout mask and
 *   output (1 + p) when attention dropout is on. Flash/SDPA kernels keep none.
 * Tensor parallelism over t GPUs splits everything except the norms and masks (Korthikanti's 10 + 24/t).
 */
import type { ModelDims } from './architectures.js';

export type Attention = 'flash' | 'eager';

export interface ActivationOptions {
  /** Bytes per activation element (2 for bf16/fp16 training, 4 for fp32). */
  bytes: number;
  attention: Attention;
  dropout: boolean;
  /** Softmax computed in fp32 (most Hugging Face models upcast it). */
  softmaxFp32: boolean;
  tensorParallel: number;
  /**
   * torch.compile fuses the gated MLP's activation and product into the matmuls' epilogues, so only
   * gate and up stay saved (2i instead of 4i per token).
   */
  fusedMlp: boolean;
}

/** Bytes one layer keeps per token for the backward pass (no recomputation), at sequence length `seq`. */
export function layerBytesPerToken(d: ModelDims, seq: number, o: ActivationOptions): number {
  const p = o.bytes;
  const t = Math.max(1, o.tensorParallel);
  const qDim = d.heads * d.headDim;
  const replicated = 2 * ((d.rmsNorm ? 4 : p) + p) * d.hidden + (o.dropout ? 2 * d.hidden : 0);
  const mlpTensors = d.gatedMlp ? (o.fusedMlp ? 2 : 4) : 2;
  // An MoE layer routes each token through expertsPerToken experts: their intermediates add up.
  const mlp = p * mlpTensors * d.intermediate * d.expertsPerToken;
  const attn = p * 5 * qDim;
  let scores = 0;
  if (o.attention === 'eager') scores = d.heads * seq * ((o.softmaxFp32 ? 4 : p) + (o.dropout ? 1 + p : 0));
  return replicated + (attn + mlp + scores) / t;
}

/** Bytes a layer keeps per token under full activation checkpointing: its input only. */
export function checkpointedBytesPerToken(d: ModelDims, p: number): number {
  return p * d.hidden;
}

/**
 * Inference working set of one layer during prefill (nothing is kept for a backward pass): the
 * residual stream, the norm output, q/k/v, and the MLP intermediates alive at once; with eager
 * attention the score matrix (in the model dtype, its fp32 upcast and the fp32 softmax output).
 */
export function inferenceLayerBytes(d: ModelDims, tokens: number, batch: number, seq: number, p: number, attention: Attention, tensorParallel = 1): number {
  const t = Math.max(1, tensorParallel);
  const qDim = d.heads * d.headDim;
  const kvDim = d.kvHeads * d.headDim;
  const mlp = (d.gatedMlp ? 3 : 2) * d.intermediate * d.expertsPerToken;
  const perToken = p * (2 * d.hidden + Math.max(qDim + 2 * kvDim + qDim, mlp) / t);
  const scores = attention === 'eager' ? (batch * d.heads * seq * seq * (p + 4 + 4)) / t : 0;
  return tokens * perToken + scores;
}
