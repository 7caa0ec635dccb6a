/**
 * What quantkit's ONNX decoder graph needs from a checkpoint's config.json, and where each Hugging Face
 * tensor goes in it. Covered: the Llama family as ONNX Runtime's GroupQueryAttention computes it (rotary
 * in rotate-half order, SiLU-gated MLP, RMSNorm): llama, mistral, qwen2 (q/k/v biases) and phi3 (fused
 * qkv_proj and gate_up_proj). Anything the graph would compute differently is refused by name.
 */
import type { ModelConfig } from '../../checkpoint.js';
import { QuantkitError } from '../../errors.js';
import { type ModelDims, architectureShapes } from '../../estimate/architectures.js';

export const ONNX_ARCHITECTURES = ['llama', 'mistral', 'qwen2', 'phi3'];

export interface DecoderArch {
  type: string;
  dims: ModelDims;
  normEps: number;
  ropeTheta: number;
  /** Rotary positions precomputed for cos/sin caches (max_position_embeddings). */
  maxPositions: number;
  /** rope_scaling 'linear': positions divided by this factor (1 otherwise). */
  ropeLinearFactor: number;
  /** Sliding-window attention span, or -1: Hugging Face's meaning, each token sees itself and the previous span - 1. */
  slidingWindow: number;
  fusedQkv: boolean;
  fusedGateUp: boolean;
}

function num(c: ModelConfig, key: string, fallback: number): number {
  const v = c[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

/** The decoder description for a config, or ERR_PLAN naming what does not map. */
export function decoderArch(config: ModelConfig | null, file: string): DecoderArch {
  const type = typeof config?.model_type === 'string' ? config.model_type : undefined;
  const refuse = (why: string) => new QuantkitError('ERR_PLAN', `--format onnx: ${why}`, { file });
  if (!config || !type || !ONNX_ARCHITECTURES.includes(type))
    throw refuse(`${type ? `model_type '${type}'` : 'no config.json model_type'} has no ONNX decoder graph in quantkit; supported: ${ONNX_ARCHITECTURES.join(', ')}`);
  const act = config.hidden_act ?? config.hidden_activation ?? 'silu';
  if (act !== 'silu') throw refuse(`hidden_act '${String(act)}': the graph's MLP is SiLU-gated`);
  if (num(config, 'partial_rotary_factor', 1) !== 1) throw refuse('partial_rotary_factor: the graph rotates whole heads');
  const scaling = config.rope_scaling as { type?: string; rope_type?: string; factor?: number } | null | undefined;
  const kind = scaling ? (scaling.rope_type ?? scaling.type ?? 'default') : 'default';
  if (kind !== 'default' && kind !== 'linear') throw refuse(`rope_scaling type '${kind}' is not supported (default and linear are)`);
  const factor = kind === 'linear' ? Number(scaling?.factor) : 1;
  if (!(factor > 0)) throw refuse('rope_scaling linear needs a positive factor');
  const dims = architectureShapes(config, file).dims;
  // Mistral and Phi-3 attend through their sliding window whenever it is set; Qwen2 only with use_sliding_window.
  const useWindow = type === 'qwen2' ? config.use_sliding_window === true : true;
  const window = num(config, 'sliding_window', -1);
  return {
    type,
    dims,
    normEps: num(config, 'rms_norm_eps', 1e-6),
    ropeTheta: num(config, 'rope_theta', 10000),
    maxPositions: dims.maxContext || 2048,
    ropeLinearFactor: factor,
    slidingWindow: useWindow && window > 0 && window < (dims.maxContext || Infinity) ? window : -1,
    fusedQkv: type === 'phi3',
    fusedGateUp: type === 'phi3',
  };
}

/** Graph keys: `embed`, `head`, `norm`, and per layer `L.<i>.<part>`. */
const LAYER_PARTS: Record<string, string> = {
  'input_layernorm.weight': 'ln1',
  'post_attention_layernorm.weight': 'ln2',
  'self_attn.q_proj.weight': 'q',
  'self_attn.k_proj.weight': 'k',
  'self_attn.v_proj.weight': 'v',
  'self_attn.q_proj.bias': 'q_bias',
  'self_attn.k_proj.bias': 'k_bias',
  'self_attn.v_proj.bias': 'v_bias',
  'self_attn.qkv_proj.weight': 'qkv',
  'self_attn.o_proj.weight': 'o',
  'mlp.gate_proj.weight': 'gate',
  'mlp.up_proj.weight': 'up',
  'mlp.gate_up_proj.weight': 'gate_up',
  'mlp.down_proj.weight': 'down',
};

/** The graph key of a Hugging Face tensor name, or null when the graph has no place for it. */
export function graphKey(name: string): string | null {
  if (name === 'model.embed_tokens.weight') return 'embed';
  if (name === 'lm_head.weight') return 'head';
  if (name === 'model.norm.weight') return 'norm';
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  const part = m ? LAYER_PARTS[m[2]!] : undefined;
  return part ? `L.${m![1]}.${part}` : null;
}

/** True for the keys of [out, in] projection matrices (quantized as MatMulNBits). */
export function isProjection(key: string): boolean {
  return key === 'head' || /^L\.\d+\.(q|k|v|qkv|o|gate|up|gate_up|down)$/.test(key);
}
