/**
 * Model shapes from a bare config.json: the hyper-parameters the memory formulas need, and the full
 * list of weight tensors (Hugging Face names and shapes) the architecture would store. The tensor list
 * feeds the same planner `quantize` uses, so a packed-size prediction from a config is the planner's
 * own arithmetic. With safetensors headers at hand (a local directory, or a hub repository's headers)
 * the headers win: these formulas are for configs alone, and tests check them against real checkpoints.
 */
import { QuantkitError } from '../errors.js';
import type { ModelConfig } from '../checkpoint.js';

export interface ModelDims {
  architecture: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** MLP width of one expert (or of the dense MLP). */
  intermediate: number;
  vocab: number;
  tiedEmbeddings: boolean;
  maxContext: number;
  /** Routed experts per layer (1 for dense models) and how many run per token. */
  experts: number;
  expertsPerToken: number;
  /** Gated MLPs (SwiGLU/GeGLU) keep three intermediate tensors per token; plain GELU/ReLU MLPs two. */
  gatedMlp: boolean;
  /** RMSNorm (upcast to fp32, which backward keeps) rather than LayerNorm (whose kernel keeps its 16-bit input). */
  rmsNorm: boolean;
  /** Encoder-only models (BERT) have no KV cache. */
  decoder: boolean;
}

export interface ShapeOnlyTensor {
  name: string;
  shape: number[];
}

export interface ArchitectureShapes {
  dims: ModelDims;
  tensors: ShapeOnlyTensor[];
}

type Builder = (c: Cfg) => ArchitectureShapes;

/** Reads config keys with the aliases different model families use, failing with the key's name. */
class Cfg {
  constructor(readonly raw: ModelConfig, readonly file: string) {}
  num(...keys: string[]): number {
    for (const k of keys) {
      const v = this.raw[k];
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
    }
    throw new QuantkitError('ERR_CHECKPOINT', `config.json has no usable ${keys.join(' / ')} (a non-negative integer)`, { file: this.file });
  }
  opt(fallback: number, ...keys: string[]): number {
    for (const k of keys) {
      const v = this.raw[k];
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
    }
    return fallback;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    return typeof v === 'boolean' ? v : fallback;
  }
}

function push(out: ShapeOnlyTensor[], name: string, ...shape: number[]): void {
  out.push({ name, shape });
}

/** Llama-family decoders: llama, mistral, qwen2, gemma, mixtral share this skeleton. */
function llamaLike(c: Cfg, opts: { qkvBias?: boolean; moe?: boolean; alwaysTied?: boolean; architecture: string }): ArchitectureShapes {
  const hidden = c.num('hidden_size');
  const layers = c.num('num_hidden_layers');
  const heads = c.num('num_attention_heads');
  const kvHeads = c.opt(heads, 'num_key_value_heads');
  const headDim = c.opt(Math.floor(hidden / heads), 'head_dim');
  const inter = c.num('intermediate_size');
  const vocab = c.num('vocab_size');
  const tied = opts.alwaysTied ? true : c.bool('tie_word_embeddings', false);
  const experts = opts.moe ? c.num('num_local_experts') : 1;
  const perToken = opts.moe ? c.num('num_experts_per_tok') : 1;
  const attnBias = opts.qkvBias ?? c.bool('attention_bias', false);
  const mlpBias = c.bool('mlp_bias', false);
  const t: ShapeOnlyTensor[] = [];
  push(t, 'model.embed_tokens.weight', vocab, hidden);
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    push(t, `${p}.input_layernorm.weight`, hidden);
    for (const [n, out] of [['q_proj', heads * headDim], ['k_proj', kvHeads * headDim], ['v_proj', kvHeads * headDim]] as const) {
      push(t, `${p}.self_attn.${n}.weight`, out, hidden);
      if (attnBias) push(t, `${p}.self_attn.${n}.bias`, out);
    }
    push(t, `${p}.self_attn.o_proj.weight`, hidden, heads * headDim);
    if (attnBias && !opts.qkvBias) push(t, `${p}.self_attn.o_proj.bias`, hidden);
    push(t, `${p}.post_attention_layernorm.weight`, hidden);
    if (opts.moe) {
      push(t, `${p}.block_sparse_moe.gate.weight`, experts, hidden);
      for (let e = 0; e < experts; e++) {
        const q = `${p}.block_sparse_moe.experts.${e}`;
        push(t, `${q}.w1.weight`, inter, hidden);
        push(t, `${q}.w2.weight`, hidden, inter);
        push(t, `${q}.w3.weight`, inter, hidden);
      }
    } else {
      for (const n of ['gate_proj', 'up_proj']) {
        push(t, `${p}.mlp.${n}.weight`, inter, hidden);
        if (mlpBias) push(t, `${p}.mlp.${n}.bias`, inter);
      }
      push(t, `${p}.mlp.down_proj.weight`, hidden, inter);
      if (mlpBias) push(t, `${p}.mlp.down_proj.bias`, hidden);
    }
  }
  push(t, 'model.norm.weight', hidden);
  if (!tied) push(t, 'lm_head.weight', vocab, hidden);
  return {
    dims: { architecture: opts.architecture, layers, hidden, heads, kvHeads, headDim, intermediate: inter, vocab, tiedEmbeddings: tied, maxContext: c.opt(0, 'max_position_embeddings'), experts, expertsPerToken: perToken, gatedMlp: true, rmsNorm: true, decoder: true },
    tensors: t,
  };
}

function phi3(c: Cfg): ArchitectureShapes {
  const base = llamaLike(c, { architecture: 'phi3' });
  const { hidden, heads, kvHeads, headDim, intermediate: inter } = base.dims;
  const tensors: ShapeOnlyTensor[] = [];
  for (const x of base.tensors) {
    const m = /^(model\.layers\.\d+)\.(self_attn\.(q|k|v)_proj|mlp\.(gate|up)_proj)\.weight$/.exec(x.name);
    if (!m) {
      tensors.push(x);
      continue;
    }
    // Phi-3 stores q/k/v as one qkv_proj and gate/up as one gate_up_proj.
    if (m[3] === 'q') push(tensors, `${m[1]}.self_attn.qkv_proj.weight`, (heads + 2 * kvHeads) * headDim, hidden);
    if (m[4] === 'gate') push(tensors, `${m[1]}.mlp.gate_up_proj.weight`, 2 * inter, hidden);
  }
  return { dims: base.dims, tensors };
}

/** Phi-1/1.5/2: parallel attention and GELU MLP off one LayerNorm, biases everywhere, a biased head. */
function phi(c: Cfg): ArchitectureShapes {
  const hidden = c.num('hidden_size');
  const layers = c.num('num_hidden_layers');
  const heads = c.num('num_attention_heads');
  const kvHeads = c.opt(heads, 'num_key_value_heads');
  const headDim = Math.floor(hidden / heads);
  const inter = c.num('intermediate_size');
  const vocab = c.num('vocab_size');
  const t: ShapeOnlyTensor[] = [];
  const lin = (p: string, o: number, i: number) => {
    push(t, `${p}.weight`, o, i);
    push(t, `${p}.bias`, o);
  };
  push(t, 'model.embed_tokens.weight', vocab, hidden);
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    push(t, `${p}.input_layernorm.weight`, hidden);
    push(t, `${p}.input_layernorm.bias`, hidden);
    lin(`${p}.self_attn.q_proj`, heads * headDim, hidden);
    lin(`${p}.self_attn.k_proj`, kvHeads * headDim, hidden);
    lin(`${p}.self_attn.v_proj`, kvHeads * headDim, hidden);
    lin(`${p}.self_attn.dense`, hidden, heads * headDim);
    lin(`${p}.mlp.fc1`, inter, hidden);
    lin(`${p}.mlp.fc2`, hidden, inter);
  }
  push(t, 'model.final_layernorm.weight', hidden);
  push(t, 'model.final_layernorm.bias', hidden);
  lin('lm_head', vocab, hidden);
  return {
    dims: { architecture: 'phi', layers, hidden, heads, kvHeads, headDim, intermediate: inter, vocab, tiedEmbeddings: false, maxContext: c.opt(2048, 'max_position_embeddings'), experts: 1, expertsPerToken: 1, gatedMlp: false, rmsNorm: false, decoder: true },
    tensors: t,
  };
}

/** GPT-2 and GPT-BigCode: learned positions, LayerNorm with bias, GELU MLP, biases everywhere. */
function gpt2Like(c: Cfg, architecture: 'gpt2' | 'gpt_bigcode'): ArchitectureShapes {
  const hidden = c.num('n_embd', 'hidden_size');
  const layers = c.num('n_layer', 'num_hidden_layers');
  const heads = c.num('n_head', 'num_attention_heads');
  const headDim = hidden / heads;
  const inter = c.opt(4 * hidden, 'n_inner');
  const vocab = c.num('vocab_size');
  const positions = c.num('n_positions', 'max_position_embeddings');
  const mqa = architecture === 'gpt_bigcode' && c.bool('multi_query', true);
  const kvHeads = mqa ? 1 : heads;
  const qkvOut = hidden + 2 * kvHeads * headDim;
  // GPT-2 stores Conv1D weights as [in, out]; GPT-BigCode uses nn.Linear [out, in].
  const lin = (i: number, o: number) => (architecture === 'gpt2' ? [i, o] : [o, i]);
  const t: ShapeOnlyTensor[] = [];
  push(t, 'transformer.wte.weight', vocab, hidden);
  push(t, 'transformer.wpe.weight', positions, hidden);
  for (let i = 0; i < layers; i++) {
    const p = `transformer.h.${i}`;
    push(t, `${p}.ln_1.weight`, hidden);
    push(t, `${p}.ln_1.bias`, hidden);
    push(t, `${p}.attn.c_attn.weight`, ...lin(hidden, qkvOut));
    push(t, `${p}.attn.c_attn.bias`, qkvOut);
    push(t, `${p}.attn.c_proj.weight`, ...lin(hidden, hidden));
    push(t, `${p}.attn.c_proj.bias`, hidden);
    push(t, `${p}.ln_2.weight`, hidden);
    push(t, `${p}.ln_2.bias`, hidden);
    push(t, `${p}.mlp.c_fc.weight`, ...lin(hidden, inter));
    push(t, `${p}.mlp.c_fc.bias`, inter);
    push(t, `${p}.mlp.c_proj.weight`, ...lin(inter, hidden));
    push(t, `${p}.mlp.c_proj.bias`, hidden);
  }
  push(t, 'transformer.ln_f.weight', hidden);
  push(t, 'transformer.ln_f.bias', hidden);
  const tied = c.bool('tie_word_embeddings', true);
  if (!tied) push(t, 'lm_head.weight', vocab, hidden);
  return {
    dims: { architecture, layers, hidden, heads, kvHeads, headDim, intermediate: inter, vocab, tiedEmbeddings: tied, maxContext: positions, experts: 1, expertsPerToken: 1, gatedMlp: false, rmsNorm: false, decoder: true },
    tensors: t,
  };
}

function gptNeox(c: Cfg): ArchitectureShapes {
  const hidden = c.num('hidden_size');
  const layers = c.num('num_hidden_layers');
  const heads = c.num('num_attention_heads');
  const inter = c.num('intermediate_size');
  const vocab = c.num('vocab_size');
  const t: ShapeOnlyTensor[] = [];
  push(t, 'gpt_neox.embed_in.weight', vocab, hidden);
  for (let i = 0; i < layers; i++) {
    const p = `gpt_neox.layers.${i}`;
    for (const n of ['input_layernorm', 'post_attention_layernorm']) {
      push(t, `${p}.${n}.weight`, hidden);
      push(t, `${p}.${n}.bias`, hidden);
    }
    push(t, `${p}.attention.query_key_value.weight`, 3 * hidden, hidden);
    push(t, `${p}.attention.query_key_value.bias`, 3 * hidden);
    push(t, `${p}.attention.dense.weight`, hidden, hidden);
    push(t, `${p}.attention.dense.bias`, hidden);
    push(t, `${p}.mlp.dense_h_to_4h.weight`, inter, hidden);
    push(t, `${p}.mlp.dense_h_to_4h.bias`, inter);
    push(t, `${p}.mlp.dense_4h_to_h.weight`, hidden, inter);
    push(t, `${p}.mlp.dense_4h_to_h.bias`, hidden);
  }
  push(t, 'gpt_neox.final_layer_norm.weight', hidden);
  push(t, 'gpt_neox.final_layer_norm.bias', hidden);
  const tied = c.bool('tie_word_embeddings', false);
  if (!tied) push(t, 'embed_out.weight', vocab, hidden);
  return {
    dims: { architecture: 'gpt_neox', layers, hidden, heads, kvHeads: heads, headDim: hidden / heads, intermediate: inter, vocab, tiedEmbeddings: tied, maxContext: c.opt(0, 'max_position_embeddings'), experts: 1, expertsPerToken: 1, gatedMlp: false, rmsNorm: false, decoder: true },
    tensors: t,
  };
}

function opt(c: Cfg): ArchitectureShapes {
  const hidden = c.num('hidden_size');
  const layers = c.num('num_hidden_layers');
  const heads = c.num('num_attention_heads');
  const inter = c.num('ffn_dim');
  const vocab = c.num('vocab_size');
  const positions = c.num('max_position_embeddings');
  const proj = c.opt(hidden, 'word_embed_proj_dim');
  const t: ShapeOnlyTensor[] = [];
  push(t, 'model.decoder.embed_tokens.weight', vocab, proj);
  push(t, 'model.decoder.embed_positions.weight', positions + 2, hidden); // OPT offsets positions by 2
  if (proj !== hidden) {
    push(t, 'model.decoder.project_out.weight', proj, hidden);
    push(t, 'model.decoder.project_in.weight', hidden, proj);
  }
  for (let i = 0; i < layers; i++) {
    const p = `model.decoder.layers.${i}`;
    for (const n of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) {
      push(t, `${p}.self_attn.${n}.weight`, hidden, hidden);
      push(t, `${p}.self_attn.${n}.bias`, hidden);
    }
    for (const n of ['self_attn_layer_norm', 'final_layer_norm']) {
      push(t, `${p}.${n}.weight`, hidden);
      push(t, `${p}.${n}.bias`, hidden);
    }
    push(t, `${p}.fc1.weight`, inter, hidden);
    push(t, `${p}.fc1.bias`, inter);
    push(t, `${p}.fc2.weight`, hidden, inter);
    push(t, `${p}.fc2.bias`, hidden);
  }
  // OPT-350m applies its last LayerNorm before the blocks; the others keep a final one.
  if (c.bool('do_layer_norm_before', true)) {
    push(t, 'model.decoder.final_layer_norm.weight', hidden);
    push(t, 'model.decoder.final_layer_norm.bias', hidden);
  }
  const tied = c.bool('tie_word_embeddings', true);
  if (!tied) push(t, 'lm_head.weight', vocab, proj);
  return {
    dims: { architecture: 'opt', layers, hidden, heads, kvHeads: heads, headDim: hidden / heads, intermediate: inter, vocab, tiedEmbeddings: tied, maxContext: positions, experts: 1, expertsPerToken: 1, gatedMlp: false, rmsNorm: false, decoder: true },
    tensors: t,
  };
}

function bloom(c: Cfg): ArchitectureShapes {
  const hidden = c.num('hidden_size', 'n_embed');
  const layers = c.num('n_layer', 'num_hidden_layers');
  const heads = c.num('n_head', 'num_attention_heads');
  const vocab = c.num('vocab_size');
  const inter = 4 * hidden;
  const t: ShapeOnlyTensor[] = [];
  push(t, 'transformer.word_embeddings.weight', vocab, hidden);
  push(t, 'transformer.word_embeddings_layernorm.weight', hidden);
  push(t, 'transformer.word_embeddings_layernorm.bias', hidden);
  for (let i = 0; i < layers; i++) {
    const p = `transformer.h.${i}`;
    for (const n of ['input_layernorm', 'post_attention_layernorm']) {
      push(t, `${p}.${n}.weight`, hidden);
      push(t, `${p}.${n}.bias`, hidden);
    }
    push(t, `${p}.self_attention.query_key_value.weight`, 3 * hidden, hidden);
    push(t, `${p}.self_attention.query_key_value.bias`, 3 * hidden);
    push(t, `${p}.self_attention.dense.weight`, hidden, hidden);
    push(t, `${p}.self_attention.dense.bias`, hidden);
    push(t, `${p}.mlp.dense_h_to_4h.weight`, inter, hidden);
    push(t, `${p}.mlp.dense_h_to_4h.bias`, inter);
    push(t, `${p}.mlp.dense_4h_to_h.weight`, hidden, inter);
    push(t, `${p}.mlp.dense_4h_to_h.bias`, hidden);
  }
  push(t, 'transformer.ln_f.weight', hidden);
  push(t, 'transformer.ln_f.bias', hidden);
  return {
    dims: { architecture: 'bloom', layers, hidden, heads, kvHeads: heads, headDim: hidden / heads, intermediate: inter, vocab, tiedEmbeddings: true, maxContext: c.opt(0, 'seq_length', 'max_position_embeddings'), experts: 1, expertsPerToken: 1, gatedMlp: false, rmsNorm: false, decoder: true },
    tensors: t,
  };
}

function falcon(c: Cfg): ArchitectureShapes {
  const hidden = c.num('hidden_size');
  const layers = c.num('num_hidden_layers', 'n_layer');
  const heads = c.num('num_attention_heads', 'n_head');
  const vocab = c.num('vocab_size');
  const headDim = hidden / heads;
  const newArch = c.bool('new_decoder_architecture', false);
  const multiQuery = c.bool('multi_query', true);
  const kvHeads = newArch ? c.num('num_kv_heads', 'n_head_kv') : multiQuery ? 1 : heads;
  const inter = c.opt(4 * hidden, 'ffn_hidden_size');
  const bias = c.bool('bias', false);
  const parallelAttn = c.bool('parallel_attn', true);
  const t: ShapeOnlyTensor[] = [];
  push(t, 'transformer.word_embeddings.weight', vocab, hidden);
  for (let i = 0; i < layers; i++) {
    const p = `transformer.h.${i}`;
    const norms = newArch && c.opt(2, 'num_ln_in_parallel_attn') === 2 ? ['ln_attn', 'ln_mlp'] : parallelAttn ? ['input_layernorm'] : ['input_layernorm', 'post_attention_layernorm'];
    for (const n of norms) {
      push(t, `${p}.${n}.weight`, hidden);
      push(t, `${p}.${n}.bias`, hidden);
    }
    const qkv = (heads + 2 * kvHeads) * headDim;
    push(t, `${p}.self_attention.query_key_value.weight`, qkv, hidden);
    if (bias) push(t, `${p}.self_attention.query_key_value.bias`, qkv);
    push(t, `${p}.self_attention.dense.weight`, hidden, hidden);
    if (bias) push(t, `${p}.self_attention.dense.bias`, hidden);
    push(t, `${p}.mlp.dense_h_to_4h.weight`, inter, hidden);
    if (bias) push(t, `${p}.mlp.dense_h_to_4h.bias`, inter);
    push(t, `${p}.mlp.dense_4h_to_h.weight`, hidden, inter);
    if (bias) push(t, `${p}.mlp.dense_4h_to_h.bias`, hidden);
  }
  push(t, 'transformer.ln_f.weight', hidden);
  push(t, 'transformer.ln_f.bias', hidden);
  const tied = c.bool('tie_word_embeddings', true);
  if (!tied) push(t, 'lm_head.weight', vocab, hidden);
  return {
    dims: { architecture: 'falcon', layers, hidden, heads, kvHeads, headDim, intermediate: inter, vocab, tiedEmbeddings: tied, maxContext: c.opt(2048, 'max_position_embeddings'), experts: 1, expertsPerToken: 1, gatedMlp: false, rmsNorm: false, decoder: true },
    tensors: t,
  };
}

/** BERT encoders (the published fine-tuning measurements use them); the pooler and a classifier head. */
function bert(c: Cfg): ArchitectureShapes {
  const hidden = c.num('hidden_size');
  const layers = c.num('num_hidden_layers');
  const heads = c.num('num_attention_heads');
  const inter = c.num('intermediate_size');
  const vocab = c.num('vocab_size');
  const positions = c.num('max_position_embeddings');
  const types = c.opt(2, 'type_vocab_size');
  const t: ShapeOnlyTensor[] = [];
  const ln = (p: string) => {
    push(t, `${p}.weight`, hidden);
    push(t, `${p}.bias`, hidden);
  };
  const lin = (p: string, o: number, i: number) => {
    push(t, `${p}.weight`, o, i);
    push(t, `${p}.bias`, o);
  };
  push(t, 'bert.embeddings.word_embeddings.weight', vocab, hidden);
  push(t, 'bert.embeddings.position_embeddings.weight', positions, hidden);
  push(t, 'bert.embeddings.token_type_embeddings.weight', types, hidden);
  ln('bert.embeddings.LayerNorm');
  for (let i = 0; i < layers; i++) {
    const p = `bert.encoder.layer.${i}`;
    for (const n of ['query', 'key', 'value']) lin(`${p}.attention.self.${n}`, hidden, hidden);
    lin(`${p}.attention.output.dense`, hidden, hidden);
    ln(`${p}.attention.output.LayerNorm`);
    lin(`${p}.intermediate.dense`, inter, hidden);
    lin(`${p}.output.dense`, hidden, inter);
    ln(`${p}.output.LayerNorm`);
  }
  lin('bert.pooler.dense', hidden, hidden);
  const labels = c.opt(0, 'num_labels');
  const id2label = c.raw.id2label;
  const n = labels || (id2label && typeof id2label === 'object' && (c.raw.architectures as string[] | undefined)?.some((a) => /SequenceClassification/.test(a)) ? Object.keys(id2label).length : 0);
  if (n) lin('classifier', n, hidden);
  return {
    dims: { architecture: 'bert', layers, hidden, heads, kvHeads: heads, headDim: hidden / heads, intermediate: inter, vocab, tiedEmbeddings: true, maxContext: positions, experts: 1, expertsPerToken: 1, gatedMlp: false, rmsNorm: false, decoder: false },
    tensors: t,
  };
}

const BUILDERS: Record<string, Builder> = {
  llama: (c) => llamaLike(c, { architecture: 'llama' }),
  mistral: (c) => llamaLike(c, { architecture: 'mistral' }),
  mixtral: (c) => llamaLike(c, { architecture: 'mixtral', moe: true }),
  qwen2: (c) => llamaLike(c, { architecture: 'qwen2', qkvBias: true }),
  gemma: (c) => llamaLike(c, { architecture: 'gemma', alwaysTied: true }),
  phi: phi,
  phi3: phi3,
  gpt2: (c) => gpt2Like(c, 'gpt2'),
  gpt_bigcode: (c) => gpt2Like(c, 'gpt_bigcode'),
  gpt_neox: gptNeox,
  opt: opt,
  bloom: bloom,
  falcon: falcon,
  bert: bert,
};

export const SUPPORTED_ARCHITECTURES = Object.keys(BUILDERS);

/** The shapes an architecture stores, from config.json's `model_type`. */
export function architectureShapes(config: ModelConfig, file = 'config.json'): ArchitectureShapes {
  const type = config.model_type;
  const builder = typeof type === 'string' ? BUILDERS[type] : undefined;
  if (!builder)
    throw new QuantkitError('ERR_CHECKPOINT', `model_type '${String(type)}' has no parameter formulas; supported: ${SUPPORTED_ARCHITECTURES.join(', ')}`, { file });
  return builder(new Cfg(config, file));
}

/** Hyper-parameters only (a checkpoint's own tensors replace the formula's list). */
export function modelDims(config: ModelConfig, file = 'config.json'): ModelDims {
  return architectureShapes(config, file).dims;
}
