/**
 * Sizes of the files llama.cpp's `llama-quantize` writes, for estimates that name one of its file
 * types (`--dtype gguf:Q4_K_M`). quantkit does not write K-quants or IQ types; this module only predicts
 * their bytes, from llama.cpp's published block sizes and its per-tensor recipe (src/llama-quant.cpp:
 * output and tied embeddings at Q6_K, attn_v and ffn_down raised on "more bits" layers, attn_v raised
 * for 70B-class GQA models, shape fallbacks when a row is not whole blocks). Tokenizer metadata (a few
 * MB) is not counted.
 */
import { QuantkitError } from '../errors.js';
import { GGML_TYPES, type GgmlType } from '../formats/gguf-container.js';
import { moreBits } from '../formats/gguf-arch.js';
import { shapeElements } from '../safetensors/dtypes.js';
import type { EstimateModel } from './model.js';
import { tensorRole } from './weights.js';

/** Weights per block and bytes per block: ggml's table (GGML_TYPES) plus the IQ types quantkit never writes. */
const IQ_BLOCKS = { IQ2_XXS: [256, 66], IQ3_S: [256, 110], IQ4_XS: [256, 136] } as const;
type BlockType = Exclude<GgmlType, 'I8' | 'I16' | 'I32' | 'I64' | 'F64'> | keyof typeof IQ_BLOCKS;
const BLOCKS = { ...Object.fromEntries(Object.entries(GGML_TYPES).map(([k, [, blck, size]]) => [k, [blck, size]])), ...IQ_BLOCKS } as Record<BlockType, readonly [number, number]>;

const DEFAULT_TYPE = {
  F32: 'F32', F16: 'F16', BF16: 'BF16', Q8_0: 'Q8_0', Q4_0: 'Q4_0', Q4_1: 'Q4_1', Q5_0: 'Q5_0', Q5_1: 'Q5_1',
  Q6_K: 'Q6_K', Q5_K_M: 'Q5_K', Q5_K_S: 'Q5_K', Q4_K_M: 'Q4_K', Q4_K_S: 'Q4_K', Q3_K_S: 'Q3_K', Q3_K_M: 'Q3_K',
  Q3_K_L: 'Q3_K', Q2_K: 'Q2_K', IQ4_XS: 'IQ4_XS', IQ4_NL: 'IQ4_NL', IQ2_XXS: 'IQ2_XXS',
} as const satisfies Record<string, BlockType>;
export type LlamaCppFileType = keyof typeof DEFAULT_TYPE;
export const LLAMA_CPP_FILE_TYPES = Object.keys(DEFAULT_TYPE) as LlamaCppFileType[];

type Category = 'token_embd' | 'output' | 'attn_v' | 'attn_qkv' | 'attn_k' | 'attn_q' | 'attn_output' | 'ffn_up' | 'ffn_gate' | 'ffn_down' | 'pos_embd' | 'router' | 'other';

function category(name: string, role: ReturnType<typeof tensorRole>): Category {
  if (role === 'output') return 'output';
  if (/(wpe|position_embeddings|embed_positions|token_type_embeddings)\.weight$/.test(name)) return 'pos_embd';
  if (role === 'embedding') return 'token_embd';
  if (/block_sparse_moe\.gate\.weight$/.test(name)) return 'router';
  if (/\.(v_proj|value)\.weight$/.test(name)) return 'attn_v';
  if (/\.(qkv_proj|c_attn|query_key_value)\.weight$/.test(name)) return 'attn_qkv';
  if (/\.(k_proj|key)\.weight$/.test(name)) return 'attn_k';
  if (/\.(q_proj|query)\.weight$/.test(name)) return 'attn_q';
  if (/\.(o_proj|out_proj|attn\.c_proj|attention\.dense|self_attention\.dense|attention\.output\.dense)\.weight$/.test(name)) return 'attn_output';
  if (/\.(down_proj|w2|mlp\.c_proj|dense_4h_to_h|fc2|output\.dense)\.weight$/.test(name)) return 'ffn_down';
  if (/\.(gate_proj|w1)\.weight$/.test(name)) return 'ffn_gate';
  if (/\.(up_proj|gate_up_proj|w3|c_fc|dense_h_to_4h|fc1|intermediate\.dense)\.weight$/.test(name)) return 'ffn_up';
  return 'other';
}



/** The type llama.cpp picks for one tensor (the parts of its recipe that apply without an imatrix). */
function pickType(ftype: LlamaCppFileType, cat: Category, layer: number, m: { layers: number; gqa: number; experts: number; is70B: boolean; tied: boolean }): BlockType {
  let t: BlockType = DEFAULT_TYPE[ftype];
  const quantized = !['F32', 'F16', 'BF16'].includes(t);
  if (!quantized) return t;
  const iq2 = ftype === 'IQ2_XXS';
  if (cat === 'output' || (m.tied && cat === 'token_embd')) return iq2 ? 'Q5_K' : t === 'Q8_0' ? 'Q8_0' : 'Q6_K';
  if (cat === 'token_embd') return iq2 ? 'Q2_K' : t;
  if (iq2) {
    if (cat === 'attn_v' || cat === 'attn_qkv') return m.gqa >= 4 || m.experts >= 4 ? 'Q4_K' : 'Q2_K';
    if (cat === 'ffn_down' && layer < Math.floor(m.layers / 8)) return 'Q2_K';
    if (cat === 'attn_output' && m.experts === 8) return 'Q5_K';
    return t;
  }
  if (cat === 'attn_v' || cat === 'attn_qkv') {
    if (cat === 'attn_qkv' && ftype === 'Q4_K_M') t = 'Q5_K';
    else if (cat === 'attn_qkv' && ftype === 'Q5_K_M') t = 'Q6_K';
    else if (ftype === 'Q2_K') t = m.gqa >= 4 ? 'Q4_K' : 'Q3_K';
    else if (ftype === 'Q3_K_M') t = layer < 2 ? 'Q5_K' : 'Q4_K';
    else if (ftype === 'Q3_K_L') t = 'Q5_K';
    else if ((ftype === 'IQ4_NL' || ftype === 'IQ4_XS') && m.gqa >= 4) t = 'Q5_K';
    else if ((ftype === 'Q4_K_M' || ftype === 'Q5_K_M') && moreBits(layer, m.layers)) t = 'Q6_K';
    else if (ftype === 'Q4_K_S' && layer < 4) t = 'Q5_K';
    if (m.is70B && (t === 'Q3_K' || t === 'Q4_K')) t = 'Q5_K';
    if (m.experts === 8) t = 'Q8_0';
    return t;
  }
  if (cat === 'attn_k' && m.experts === 8) return 'Q8_0';
  if (cat === 'ffn_down') {
    const n = m.layers;
    if (ftype === 'Q2_K') return 'Q3_K';
    if (ftype === 'Q3_K_M') return layer < Math.floor(n / 16) ? 'Q5_K' : 'Q4_K';
    if (ftype === 'Q3_K_L') return 'Q5_K';
    if (ftype === 'Q4_K_M') return moreBits(layer, n) ? 'Q6_K' : t;
    if (layer < Math.floor(n / 8) && (ftype === 'IQ4_NL' || ftype === 'IQ4_XS')) return 'Q5_K';
    if (ftype === 'Q5_K_M' && moreBits(layer, n)) return 'Q6_K';
    if (ftype === 'Q4_K_S' && layer < Math.floor(n / 8)) return 'Q5_K';
    return t;
  }
  if (cat === 'attn_output') {
    if (m.experts === 8) return ['Q2_K', 'Q3_K_S', 'Q3_K_M', 'IQ4_NL', 'Q4_K_S', 'Q4_K_M', 'IQ4_XS'].includes(ftype) ? 'Q5_K' : t;
    if (ftype === 'Q2_K') return 'Q3_K';
    if (ftype === 'Q3_K_M') return 'Q4_K';
    if (ftype === 'Q3_K_L') return 'Q5_K';
  }
  return t;
}

/** llama.cpp's fallback when a row is not whole blocks of the chosen type. */
function fallback(t: BlockType, cols: number): BlockType {
  if (cols % BLOCKS[t][0] === 0) return t;
  const next: Partial<Record<BlockType, BlockType>> = { IQ2_XXS: 'IQ4_NL', IQ3_S: 'IQ4_NL', IQ4_XS: 'IQ4_NL', Q2_K: 'Q4_0', Q3_K: 'Q4_0', Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' };
  const f = next[t];
  return f && cols % BLOCKS[f][0] === 0 ? f : 'F16';
}

export function llamaCppTensorBytes(model: EstimateModel, ftype: LlamaCppFileType): { total: number; quantized: number; largestQuantizedParams: number; types: Map<string, number> } {
  if (!(ftype in DEFAULT_TYPE)) throw new QuantkitError('ERR_USAGE', `unknown llama.cpp file type '${ftype}' (choose from ${LLAMA_CPP_FILE_TYPES.join(', ')})`);
  const d = model.dims;
  if (!d) throw new QuantkitError('ERR_CHECKPOINT', 'llama.cpp file sizes need the architecture from config.json', { file: model.checkpoint.dir });
  // llama.cpp calls a model "70B" by its layer count and width (80 layers, 8192 wide in the Llama family).
  const m = { layers: d.layers, gqa: d.heads / d.kvHeads, experts: d.experts, is70B: d.layers === 80 && d.hidden === 8192, tied: d.tiedEmbeddings };
  let total = 0, quantized = 0, largest = 0;
  const types = new Map<string, number>();
  for (const t of model.checkpoint.tensors) {
    const n = shapeElements(t.shape)!;
    const role = tensorRole(t);
    const cat = category(t.name, role);
    const layer = Number(/\.(?:layers|h|layer)\.(\d+)\./.exec(t.name)?.[1] ?? 0);
    let type: BlockType;
    if (t.shape.length < 2) type = 'F32';
    else if (cat === 'pos_embd' || cat === 'router') type = 'F32';
    else type = fallback(pickType(ftype, cat, layer, m), t.shape[t.shape.length - 1]!);
    const [blk, size] = BLOCKS[type];
    const bytes = (n / blk) * size;
    total += bytes;
    if (type !== 'F32' && type !== 'F16' && type !== 'BF16') {
      quantized += bytes;
      largest = Math.max(largest, n);
    }
    types.set(type, (types.get(type) ?? 0) + n);
  }
  return { total, quantized, largestQuantizedParams: largest, types };
}
