/**
 * What makes a GGUF file runnable by llama.cpp: the architecture's tensor names, its hyper-parameter
 * keys, and the changes llama.cpp's own converter (convert_hf_to_gguf.py) makes to some tensors:
 *  - llama/mistral: q_proj and k_proj rows go back from Hugging Face's rotate-half order to the
 *    interleaved order llama.cpp's rotary embedding expects (per head: row pairs (i, i + d/2) → (2i, 2i+1));
 *  - gemma: RMSNorm weights are stored as 1 + w (Hugging Face applies the 1 at run time);
 *  - phi3 keeps its fused qkv_proj and gate_up_proj (llama.cpp reads them fused), qwen2 its q/k/v biases.
 */
import type { ModelConfig } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import { type ModelDims, architectureShapes } from '../estimate/architectures.js';
import { type GgufKV, GgufValueType } from './gguf-container.js';
import { toFloat32 } from '../convert.js';
import type { Dtype } from '../safetensors/dtypes.js';
import { padRows } from '../quant/row-padding.js';

/** A change to a tensor's values made before it is stored (and undone by nothing: verify applies it to the source). */
export type TensorTransform =
  /** Rotate-half → interleaved rotary order, per head of `headDim` rows. */
  | { kind: 'unpermute-rope'; heads: number; headDim: number }
  /** Gemma norms: store 1 + w. */
  | { kind: 'add-one' }
  /** Rows zero-padded to `cols` elements: whole quantization blocks (ONNX MatMulNBits, src/quant/row-padding.ts). */
  | { kind: 'pad-rows'; cols: number };

export interface MappedTensor {
  name: string;
  transform?: TensorTransform;
}

export interface GgufArchitecture {
  /** llama.cpp's architecture name (general.architecture). */
  arch: string;
  dims: ModelDims;
  /** GGUF name and transform of a Hugging Face tensor; null for tensors llama.cpp does not read. */
  map(hfName: string): MappedTensor | null;
  metadata(): GgufKV[];
}

const S = GgufValueType.STRING, U32 = GgufValueType.U32, F32 = GgufValueType.F32;

const LAYER_NAMES: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.qkv_proj.weight': 'attn_qkv.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
  'mlp.gate_up_proj.weight': 'ffn_up.weight',
};

function num(c: ModelConfig, key: string, fallback: number): number {
  const v = c[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

export const RUNNABLE_ARCHITECTURES = ['llama', 'mistral', 'qwen2', 'phi3', 'gemma'];

/** The llama.cpp mapping for a config, or an error naming the supported architectures. */
export function ggufArchitecture(config: ModelConfig | null, file: string): GgufArchitecture {
  const type = typeof config?.model_type === 'string' ? config.model_type : undefined;
  if (!config || !type || !RUNNABLE_ARCHITECTURES.includes(type))
    throw new QuantkitError(
      'ERR_PLAN',
      `${type ? `model_type '${type}'` : 'no config.json model_type'}: runnable GGUF supports ${RUNNABLE_ARCHITECTURES.join(', ')}; use --format gguf-raw for a plain container that llama.cpp will not run`,
      { file },
    );
  const dims = architectureShapes(config, file).dims;
  // Mistral runs as llama in llama.cpp; the others under their own names.
  const arch = type === 'mistral' ? 'llama' : type;
  const permute = arch === 'llama';
  const gemma = arch === 'gemma';
  const map = (hf: string): MappedTensor | null => {
    if (hf === 'model.embed_tokens.weight') return { name: 'token_embd.weight' };
    if (hf === 'lm_head.weight') return { name: 'output.weight' };
    if (hf === 'model.norm.weight') return { name: 'output_norm.weight', ...(gemma ? { transform: { kind: 'add-one' } } : {}) };
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
    if (!m) return null;
    if (/rotary_emb\.inv_freq$/.test(m[2]!)) return null; // buffers some exporters save
    const tail = LAYER_NAMES[m[2]!];
    if (!tail) return null;
    const name = `blk.${m[1]}.${tail}`;
    if (permute && m[2] === 'self_attn.q_proj.weight') return { name, transform: { kind: 'unpermute-rope', heads: dims.heads, headDim: dims.headDim } };
    if (permute && m[2] === 'self_attn.k_proj.weight') return { name, transform: { kind: 'unpermute-rope', heads: dims.kvHeads, headDim: dims.headDim } };
    if (gemma && tail.endsWith('norm.weight')) return { name, transform: { kind: 'add-one' } };
    return { name };
  };
  const metadata = (): GgufKV[] => {
    const p = (k: string) => `${arch}.${k}`;
    const kv: GgufKV[] = [
      { key: p('context_length'), type: U32, value: dims.maxContext || 2048 },
      { key: p('embedding_length'), type: U32, value: dims.hidden },
      { key: p('block_count'), type: U32, value: dims.layers },
      { key: p('feed_forward_length'), type: U32, value: dims.intermediate },
      { key: p('attention.head_count'), type: U32, value: dims.heads },
      { key: p('attention.head_count_kv'), type: U32, value: dims.kvHeads },
      { key: p('attention.layer_norm_rms_epsilon'), type: F32, value: num(config, 'rms_norm_eps', 1e-6) },
      { key: p('rope.freq_base'), type: F32, value: num(config, 'rope_theta', 10000) },
      { key: p('rope.dimension_count'), type: U32, value: Math.round(dims.headDim * num(config, 'partial_rotary_factor', 1)) },
    ];
    if (dims.headDim * dims.heads !== dims.hidden || gemma)
      kv.push({ key: p('attention.key_length'), type: U32, value: dims.headDim }, { key: p('attention.value_length'), type: U32, value: dims.headDim });
    kv.push({ key: p('vocab_size'), type: U32, value: dims.vocab });
    const scaling = config.rope_scaling as { type?: string; rope_type?: string; factor?: number } | null | undefined;
    const kind = scaling?.rope_type ?? scaling?.type;
    if (kind === 'linear' && typeof scaling?.factor === 'number')
      kv.push({ key: p('rope.scaling.type'), type: S, value: 'linear' }, { key: p('rope.scaling.factor'), type: F32, value: scaling.factor });
    else if (kind && kind !== 'default' && kind !== 'llama3')
      throw new QuantkitError('ERR_PLAN', `rope_scaling type '${kind}' is not supported by the runnable GGUF mapping`, { file });
    return kv;
  };
  return { arch, dims, map, metadata };
}

/**
 * Applies a transform to row-major tensor bytes (`rows` x `rowBytes`), returning new bytes from `alloc`
 * (quantize passes its buffer pool: a fresh multi-megabyte buffer costs more in first-touch page faults
 * than the copy itself).
 */
export function applyRowTransform(bytes: Uint8Array, rows: number, t: TensorTransform, alloc: (n: number) => Uint8Array = (n) => new Uint8Array(n)): Uint8Array {
  const order = rowOrderOf(rows, t);
  const rowBytes = bytes.length / rows;
  const out = alloc(bytes.length);
  for (let dst = 0; dst < rows; dst++) out.set(bytes.subarray(order[dst]! * rowBytes, (order[dst]! + 1) * rowBytes), dst * rowBytes);
  return out;
}

/**
 * A row permutation's source row for every output row (quantize hands it to the kernels, which read
 * the rows in this order instead of a reordered copy).
 */
export function rowOrderOf(rows: number, t: TensorTransform): Int32Array {
  if (t.kind !== 'unpermute-rope') throw new Error('rowOrderOf handles row permutations only');
  if (rows !== t.heads * t.headDim || t.headDim % 2) throw new QuantkitError('ERR_PLAN', `cannot reorder ${rows} rows as ${t.heads} rotary heads of ${t.headDim}`);
  const order = new Int32Array(rows);
  const half = t.headDim / 2;
  // convert_hf_to_gguf's permute: view rows as (head, 2, half) and swap the last two axes.
  for (let h = 0; h < t.heads; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) order[h * t.headDim + i * 2 + j] = h * t.headDim + j * half + i;
  return order;
}

/** Applies a planned transform to a source tensor's bytes; returns the new bytes and their dtype. */
export function transformTensor(bytes: Uint8Array, dtype: Dtype, shape: readonly number[], t: TensorTransform, alloc?: (n: number) => Uint8Array): { bytes: Uint8Array; dtype: Dtype } {
  if (t.kind === 'unpermute-rope') return { bytes: applyRowTransform(bytes, shape[0]!, t, alloc), dtype };
  if (t.kind === 'pad-rows') return { bytes: padRows(bytes, dtype, shape[0]!, t.cols, alloc), dtype };
  const f = toFloat32(bytes, dtype);
  for (let i = 0; i < f.length; i++) f[i] = f[i]! + 1;
  return { bytes: new Uint8Array(f.buffer), dtype: 'F32' };
}
