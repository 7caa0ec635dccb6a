/**
 * Which ggml type every matrix of a GGUF file gets: llama.cpp's file types with llama-quantize's
 * per-tensor rules (llama.cpp 80fb11a, src/llama-quant.cpp: llama_tensor_get_type and its helpers,
 * without an importance matrix), `--pure`, and quantkit's own 'mobile' mix. The GGUF writer's decisions
 * and `estimate --dtype gguf:<TYPE>` both come from here (estimate through the planner).
 *
 * llama.cpp's rules, as they read in that source:
 *  - output.weight, and token_embd.weight when there is no output.weight (tied embeddings), get Q6_K
 *    (Q8_0 in a Q8_0 file; Q8_0 when the row is not whole blocks of the file's type; Q5_K for IQ2_XXS);
 *  - attn_v (and fused attn_qkv, which llama.cpp treats as attn_v) gets more bits: Q6_K on the "more
 *    bits" layers for Q4_K_M/Q5_K_M, Q5_K on the first 4 for Q4_K_S, Q5_K/Q4_K for Q3_K_M, Q5_K for Q3_K_L,
 *    Q4_K (GQA >= 4) or Q3_K for Q2_K, Q5_K for IQ4_NL/IQ4_XS with GQA >= 4; Q3_K/Q4_K become Q5_K on
 *    70B-class models; Q8_0 with 8 experts (attn_k too);
 *  - ffn_down: Q6_K on the more-bits layers for Q4_K_M/Q5_K_M, Q5_K on the first eighth for Q4_K_S and
 *    IQ4_NL/IQ4_XS, Q5_K/Q4_K for Q3_K_M (first sixteenth Q5_K), Q5_K for Q3_K_L, Q3_K for Q2_K;
 *  - attn_output: Q3_K for Q2_K, Q4_K for Q3_K_M, Q5_K for Q3_K_L; Q5_K with 8 experts;
 *  - a row that is not whole blocks falls back (Q2_K/Q3_K → Q4_0, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0,
 *    IQ4_XS/IQ2_XXS → IQ4_NL; the registry's `fallback`), and to F16 when even that does not fit;
 *  - "more bits" layers: the first and last eighth and every third in between; the layer of attn_v and
 *    ffn_down is its position among the file's attn_v / ffn_down tensors in llama.cpp's order (layer
 *    number, then name), except for MoE models, where it is read from the name.
 *  - llama.cpp quantizes only 2-D+ tensors whose names end in "weight" and are not norms, the MoE router
 *    (ffn_gate_inp), position embeddings or token types: those keep their type.
 */
import { type GgmlTypeName, ggmlFits, ggmlType } from './types/index.js';

/**
 * llama-quantize's file types quantkit plans: LLAMA_FTYPE_* id (general.file_type, llama.h), default
 * tensor type (llama_ftype_get_default_type) and whether quantkit writes it pure unless told otherwise.
 * The single-type files (F32, F16, BF16 and the 32-weight Q8_0/Q4_0/Q4_1/Q5_0/Q5_1) have always been
 * uniform in quantkit, and llama.cpp's only rule for them (without an importance matrix) is the output
 * tensor's: they stay pure by default (`pure: false`, the CLI's --no-pure, gives llama-quantize's file).
 * The K-quant and IQ file types name llama.cpp's mixes and get its per-tensor rules unless --pure.
 */
export const LLAMA_CPP_FTYPES = {
  F32: { id: 0, base: 'F32', pureByDefault: true },
  F16: { id: 1, base: 'F16', pureByDefault: true },
  BF16: { id: 32, base: 'BF16', pureByDefault: true },
  Q8_0: { id: 7, base: 'Q8_0', pureByDefault: true },
  Q4_0: { id: 2, base: 'Q4_0', pureByDefault: true },
  Q4_1: { id: 3, base: 'Q4_1', pureByDefault: true },
  Q5_0: { id: 8, base: 'Q5_0', pureByDefault: true },
  Q5_1: { id: 9, base: 'Q5_1', pureByDefault: true },
  IQ4_NL: { id: 25, base: 'IQ4_NL', pureByDefault: false },
  Q2_K: { id: 10, base: 'Q2_K', pureByDefault: false },
  Q3_K_S: { id: 11, base: 'Q3_K', pureByDefault: false },
  Q3_K_M: { id: 12, base: 'Q3_K', pureByDefault: false },
  Q3_K_L: { id: 13, base: 'Q3_K', pureByDefault: false },
  Q4_K_S: { id: 14, base: 'Q4_K', pureByDefault: false },
  Q4_K_M: { id: 15, base: 'Q4_K', pureByDefault: false },
  Q5_K_S: { id: 16, base: 'Q5_K', pureByDefault: false },
  Q5_K_M: { id: 17, base: 'Q5_K', pureByDefault: false },
  Q6_K: { id: 18, base: 'Q6_K', pureByDefault: false },
  IQ4_XS: { id: 30, base: 'IQ4_XS', pureByDefault: false },
  IQ2_XXS: { id: 19, base: 'IQ2_XXS', pureByDefault: false },
} as const satisfies Record<string, { id: number; base: GgmlTypeName; pureByDefault: boolean }>;
export type LlamaCppFileType = keyof typeof LLAMA_CPP_FTYPES;
export const LLAMA_CPP_FILE_TYPES = Object.keys(LLAMA_CPP_FTYPES) as LlamaCppFileType[];

/** A GGUF file type quantkit writes: one of llama.cpp's, or 'mobile' (quantkit's mix: mobileType below). */
export type GgufFileType = LlamaCppFileType | 'mobile';
export const GGUF_FILE_TYPES: GgufFileType[] = [...LLAMA_CPP_FILE_TYPES, 'mobile'];

export const isLlamaCppFileType = (t: string | undefined): t is LlamaCppFileType => t !== undefined && t in LLAMA_CPP_FTYPES;

/** llama.cpp's tensor categories (tensor_get_category). */
export type TensorCategory =
  | 'token_embd' | 'output' | 'attn_q' | 'attn_k' | 'attn_v' | 'attn_qkv' | 'attn_kv_b' | 'attn_output' | 'ffn_up' | 'ffn_gate' | 'ffn_down' | 'other';

/** A GGUF tensor name's category, as llama.cpp's tensor_get_category reads it (substring tests, in its order). */
export function ggufCategory(name: string): TensorCategory {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  for (const c of ['attn_qkv', 'attn_kv_b', 'attn_v', 'attn_k', 'attn_q', 'attn_output'] as const) if (name.includes(`${c}.weight`)) return c;
  for (const c of ['ffn_up', 'ffn_gate', 'ffn_down'] as const) if (name.includes(c)) return c;
  return 'other';
}

/** Does llama.cpp quantize a GGUF tensor of this name and rank (tensor_allows_quantization, for the names quantkit writes)? */
export function llamaCppQuantizes(name: string, rank: number): boolean {
  return rank >= 2 && name.endsWith('weight') && !name.includes('_norm.weight') && !name.includes('ffn_gate_inp.weight') && !/(^|\.)(position_embd|token_types)\.weight$/.test(name);
}

/**
 * The GGUF category of a Hugging Face tensor (gguf-raw files and estimates for architectures without a
 * llama.cpp mapping keep checkpoint names); null for what llama.cpp does not quantize.
 */
export function hfCategory(name: string, rank: number): TensorCategory | null {
  if (rank < 2 || !name.endsWith('weight')) return null;
  if (/(wpe|position_embeddings|embed_positions|token_type_embeddings)\.weight$/.test(name)) return null;
  if (/block_sparse_moe\.gate\.weight$|\.mlp\.gate\.weight$|\.router\.weight$/.test(name)) return null;
  if (/(^|\.)(lm_head|embed_out|output)\.weight$/.test(name)) return 'output';
  if (/(embed_tokens|embed_in|wte|word_embeddings|tok_embeddings)\.weight$/.test(name)) return 'token_embd';
  if (/\.(v_proj|value)\.weight$/.test(name)) return 'attn_v';
  if (/\.(qkv_proj|c_attn|query_key_value|Wqkv)\.weight$/.test(name)) return 'attn_qkv';
  if (/\.(k_proj|key)\.weight$/.test(name)) return 'attn_k';
  if (/\.(q_proj|query)\.weight$/.test(name)) return 'attn_q';
  if (/\.(o_proj|out_proj|attn\.c_proj|attention\.dense|self_attention\.dense|attention\.output\.dense)\.weight$/.test(name)) return 'attn_output';
  if (/\.(down_proj|w2|mlp\.c_proj|dense_4h_to_h|fc2|output\.dense)\.weight$/.test(name)) return 'ffn_down';
  if (/\.(gate_proj|w1)\.weight$/.test(name)) return 'ffn_gate';
  if (/\.(up_proj|gate_up_proj|w3|c_fc|dense_h_to_4h|fc1|intermediate\.dense)\.weight$/.test(name)) return 'ffn_up';
  return 'other';
}

/** The layer number in a GGUF (`blk.N.`) or Hugging Face (`.layers.N.`, `.h.N.`, ...) tensor name; -1 for none. */
export function layerOf(name: string): number {
  const m = /^blk\.(\d+)\./.exec(name) ?? /(?:^|\.)(?:layers|h|layer|blocks)\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : -1;
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers and every third in between. */
export const moreBits = (i: number, n: number) => i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;

/** What llama.cpp's rules read off the model (its hparams and llm_type). */
export interface MixModel {
  /** llama.cpp's architecture name (llama for mistral and mixtral, as its converter writes them). */
  arch: string;
  layers: number;
  heads: number;
  kvHeads: number;
  /** Experts per MoE layer (0 or 1: dense). */
  experts: number;
}

/** llama.cpp's LLM_TYPE_70B, the only model type its rules look at (per-architecture load_hparams). */
function is70B(m: MixModel): boolean {
  if (m.arch === 'llama') return m.experts !== 8 && m.layers === 80 && m.heads !== m.kvHeads;
  return (m.arch === 'qwen2' && m.layers === 80) || ((m.arch === 'deci' || m.arch === 'olmo') && m.layers === 80) || (m.arch === 'jais2' && m.layers === 68);
}

/** One tensor of the file, as the rules see it. */
export interface MixTensor {
  name: string;
  category: TensorCategory;
  /** Row length (GGUF ne[0]). */
  cols: number;
  /** False for tensors llama.cpp keeps as they are (norms, router, 1-D). */
  quantizable: boolean;
}

/** The type rules' running state: llama.cpp counts attn_v and ffn_down tensors as it walks the file. */
interface Walk {
  ft: LlamaCppFileType;
  m: MixModel;
  gqa: number;
  is70B: boolean;
  tied: boolean;
  /** llama-quantize was given an importance matrix (qs.has_imatrix). */
  imatrix: boolean;
  nAttnV: number;
  iAttnV: number;
  iFfnDown: number;
}

type T = GgmlTypeName;

/** llama_tensor_get_type_impl for the file types quantkit plans (the imatrix rules for the types they touch). */
function ruleType(w: Walk, t: MixTensor, base: T): T {
  const { ft, m } = w;
  const falcon = m.arch === 'falcon';
  const attnV = t.category === 'attn_v' || t.category === 'attn_qkv' || t.category === 'attn_kv_b';
  if (t.category === 'output' || (w.tied && t.category === 'token_embd')) {
    if (falcon || t.cols % ggmlType(base).blockWeights !== 0) return 'Q8_0';
    if (ft === 'IQ2_XXS') return 'Q5_K';
    return base !== 'Q8_0' ? 'Q6_K' : base;
  }
  if (t.category === 'token_embd') return ft === 'IQ2_XXS' ? 'Q2_K' : base;
  if (ft === 'IQ2_XXS') {
    if (attnV) {
      const v: T = w.gqa >= 4 || m.experts >= 4 ? 'Q4_K' : 'Q2_K';
      w.iAttnV++;
      return v;
    }
    if (m.experts === 8 && t.category === 'attn_k') return 'Q4_K';
    if (t.category === 'ffn_down') return w.iFfnDown++ < Math.floor(m.layers / 8) ? 'Q2_K' : base;
    if (t.category === 'attn_output' && m.experts === 8) return 'Q5_K';
    return base;
  }
  if (attnV) {
    let v = base;
    const i = w.iAttnV++;
    if (ft === 'Q2_K') v = w.gqa >= 4 ? 'Q4_K' : 'Q3_K';
    else if (ft === 'Q3_K_M') v = i < 2 ? 'Q5_K' : 'Q4_K';
    else if (ft === 'Q3_K_L') v = 'Q5_K';
    else if ((ft === 'IQ4_NL' || ft === 'IQ4_XS') && w.gqa >= 4) v = 'Q5_K';
    else if ((ft === 'Q4_K_M' || ft === 'Q5_K_M') && moreBits(i, w.nAttnV)) v = 'Q6_K';
    else if (ft === 'Q4_K_S' && i < 4) v = 'Q5_K';
    if (w.is70B && (v === 'Q3_K' || v === 'Q4_K')) v = 'Q5_K';
    if (m.experts === 8) v = 'Q8_0';
    return v;
  }
  if (t.category === 'attn_k') return m.experts === 8 ? 'Q8_0' : base;
  if (t.category === 'ffn_down') {
    // A MoE model's experts are not in layer order: llama.cpp reads the layer from the name there.
    const counted = w.iFfnDown++;
    const i = m.experts > 1 ? layerOf(t.name) : counted;
    const n = m.layers;
    if (ft === 'Q2_K') return 'Q3_K';
    if (ft === 'Q3_K_M') return i < Math.floor(n / 16) ? 'Q5_K' : !falcon || moreBits(i, n) ? 'Q4_K' : 'Q3_K';
    if (ft === 'Q3_K_L') return falcon ? 'Q4_K' : 'Q5_K';
    if (ft === 'Q4_K_M') return falcon ? (i < Math.floor(n / 16) ? 'Q6_K' : moreBits(i, n) ? 'Q5_K' : 'Q4_K') : moreBits(i, n) ? 'Q6_K' : base;
    if (i < Math.floor(n / 8) && (ft === 'IQ4_NL' || ft === 'IQ4_XS') && !w.imatrix) return 'Q5_K';
    if (ft === 'Q5_K_M' && moreBits(i, n)) return 'Q6_K';
    if (ft === 'Q4_K_S' && !falcon && i < Math.floor(n / 8)) return 'Q5_K';
    // With an importance matrix llama.cpp guards the first eighth's ffn_down of Q4_0/Q5_0 files with Q4_1/Q5_1.
    if ((ft === 'Q4_0' || ft === 'Q5_0') && w.imatrix && i < Math.floor(n / 8)) return ft === 'Q4_0' ? 'Q4_1' : 'Q5_1';
    return base;
  }
  if (t.category === 'attn_output') {
    if (falcon) return ft === 'Q3_K_L' ? 'Q4_K' : base;
    if (m.experts === 8) return (['Q2_K', 'Q3_K_S', 'Q3_K_M', 'IQ4_NL', 'Q4_K_S', 'Q4_K_M', 'IQ4_XS'] as string[]).includes(ft) ? 'Q5_K' : base;
    if (ft === 'Q2_K') return 'Q3_K';
    if (ft === 'Q3_K_M') return 'Q4_K';
    if (ft === 'Q3_K_L') return 'Q5_K';
  }
  // (attn_qkv's own rule in llama.cpp sits behind the attn_v branch above and is never reached.)
  return base;
}

/**
 * llama.cpp's tensor_type_fallback: the type a row of `cols` weights can hold, starting from `wanted`
 * (its registry fallback, then F16 when even that is not whole blocks).
 */
export function fitChoice(wanted: T, cols: number): MixChoice {
  const t = ggmlType(wanted);
  if (ggmlFits(t, cols)) return { type: wanted };
  const f = t.fallback !== null ? ggmlType(t.fallback)! : t;
  return { type: ggmlFits(f, cols) ? (f.name as T) : 'F16', wanted };
}

/** llama.cpp's order of a file's tensors (llama_model_loader's weights_map): layer number, then name. */
function llamaCppOrder(a: MixTensor, b: MixTensor): number {
  const la = /^blk\.(\d+)\./.exec(a.name), lb = /^blk\.(\d+)\./.exec(b.name);
  const ia = la ? Number(la[1]) : layerOf(a.name), ib = lb ? Number(lb[1]) : layerOf(b.name);
  return ia !== ib ? ia - ib : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** A tensor's type, and the one the rules asked for when its row length made it fall back. */
export interface MixChoice {
  type: T;
  wanted?: T;
}

/**
 * The type llama-quantize gives every quantizable tensor of a file (`tensors`: all of the file's
 * tensors, with their categories); `pure`: llama-quantize --pure (every matrix the file type's own,
 * shape fallbacks still applied). Tensors llama.cpp keeps as they are have no entry.
 */
export function llamaCppTypes(ft: LlamaCppFileType, tensors: readonly MixTensor[], m: MixModel, pure = false, imatrix = false): Map<string, MixChoice> {
  const base = LLAMA_CPP_FTYPES[ft].base;
  const out = new Map<string, MixChoice>();
  const w: Walk = {
    ft,
    m,
    gqa: m.kvHeads > 0 ? Math.floor(m.heads / m.kvHeads) : 0,
    is70B: is70B(m),
    tied: !tensors.some((t) => t.category === 'output'),
    imatrix,
    nAttnV: tensors.filter((t) => t.category === 'attn_v' || t.category === 'attn_qkv' || t.category === 'attn_kv_b').length,
    iAttnV: 0,
    iFfnDown: 0,
  };
  for (const t of [...tensors].sort(llamaCppOrder)) {
    if (!t.quantizable) continue;
    // F32/F16/BF16 files: every matrix in that type, no mix and no fallback (not a quantized type).
    if (!ggmlType(base).quantized) out.set(t.name, { type: base });
    else out.set(t.name, fitChoice(pure ? base : ruleType(w, t, base), t.cols));
  }
  return out;
}

/**
 * quantkit's 'mobile' mix (llama.cpp's Q4_K_M idea with 32-weight blocks that every llama.cpp build runs
 * fast): Q8_0 for the output head (or the tied embedding serving as it), for the untied embedding, and for
 * attn_v and ffn_down on the more-bits layers; Q4_0 elsewhere.
 */
export function mobileType(category: TensorCategory, layer: number, layers: number): 'Q8_0' | 'Q4_0' {
  if (category === 'output' || category === 'token_embd') return 'Q8_0';
  if ((category === 'attn_v' || category === 'ffn_down') && layer >= 0 && moreBits(layer, layers)) return 'Q8_0';
  return 'Q4_0';
}
