/**
 * A tiny Llama-architecture checkpoint with a GPT-2-style byte-level BPE tokenizer (Llama 3's
 * pre-tokenizer), random weights: enough for llama.cpp to load it and tokenize with our export.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headerFor, writeRaw } from './fixtures.js';

/** GPT-2's byte → printable character table. */
export function bytesToUnicode(): string[] {
  const keep = new Set<number>();
  for (let b = 33; b <= 126; b++) keep.add(b);
  for (let b = 161; b <= 172; b++) keep.add(b);
  for (let b = 174; b <= 255; b++) keep.add(b);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.has(b) ? b : 256 + n++);
  return out;
}

export const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export type TinyArch = 'llama' | 'mistral' | 'qwen2' | 'phi3' | 'gemma';

export function byteLevelModel(dir: string, arch: TinyArch = 'llama'): { dir: string; vocab: Record<string, number> } {
  mkdirSync(dir, { recursive: true });
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  chars.forEach((c, i) => (vocab[c] = i));
  const merges = ['Ġ t', 'h e', 'Ġt he', 'l l', 'he ll'];
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  const bos = Object.keys(vocab).length, eos = bos + 1;
  const tokenizer = {
    version: '1.0',
    added_tokens: [
      { id: bos, content: '<|begin_of_text|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: eos, content: '<|end_of_text|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: LLAMA3_SPLIT }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges },
  };
  let V = eos + 1;
  if (arch === 'phi3') {
    // Phi-3 ships a SentencePiece tokenizer with chat tokens after the 32,000 pieces, and llama.cpp's
    // phi3 loader looks them up: stories260k's tokenizer plus Phi-3's added tokens.
    const src = join(import.meta.dirname, '..', '..', 'models', 'stories260k');
    copyFileSync(join(src, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
    const tj = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8')) as { added_tokens: object[] };
    const extra = ['<|endoftext|>', '<|assistant|>', '<|end|>', '<|user|>'];
    extra.forEach((content, i) => tj.added_tokens.push({ id: 512 + i, content, single_word: false, lstrip: false, rstrip: true, normalized: false, special: true }));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
    V = 512 + extra.length;
  } else {
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', add_bos_token: true, chat_template: "{% for m in messages %}{{ m['content'] }}{% endfor %}" }));
  }
  const H = 32, I = 64;
  const kv = arch === 'phi3' ? 4 : 2; // phi3 without GQA, as Phi-3-mini
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: arch, hidden_size: H, intermediate_size: I, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: kv, head_dim: H / 4, vocab_size: V, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: arch !== 'phi3', torch_dtype: 'float32', bos_token_id: arch === 'phi3' ? 1 : bos, eos_token_id: arch === 'phi3' ? 2 : eos }));
  const d = H / 4;
  const shapes: [string, number[]][] = [['model.embed_tokens.weight', [V, H]], ['model.layers.0.input_layernorm.weight', [H]]];
  if (arch === 'phi3') shapes.push(['model.layers.0.self_attn.qkv_proj.weight', [(4 + 2 * kv) * d, H]]);
  else {
    shapes.push(['model.layers.0.self_attn.q_proj.weight', [H, H]], ['model.layers.0.self_attn.k_proj.weight', [kv * d, H]], ['model.layers.0.self_attn.v_proj.weight', [kv * d, H]]);
    if (arch === 'qwen2') shapes.push(['model.layers.0.self_attn.q_proj.bias', [H]], ['model.layers.0.self_attn.k_proj.bias', [kv * d]], ['model.layers.0.self_attn.v_proj.bias', [kv * d]]);
  }
  shapes.push(['model.layers.0.self_attn.o_proj.weight', [H, H]], ['model.layers.0.post_attention_layernorm.weight', [H]]);
  if (arch === 'phi3') shapes.push(['model.layers.0.mlp.gate_up_proj.weight', [2 * I, H]]);
  else shapes.push(['model.layers.0.mlp.gate_proj.weight', [I, H]], ['model.layers.0.mlp.up_proj.weight', [I, H]]);
  shapes.push(['model.layers.0.mlp.down_proj.weight', [H, I]], ['model.norm.weight', [H]]);
  if (arch === 'phi3') shapes.push(['lm_head.weight', [V, H]]);
  const tensors = shapes.map(([name, shape]) => ({ name, dtype: 'F32', shape, bytes: 4 * shape.reduce((a, b) => a * b, 1) }));
  const data = new Float32Array(tensors.reduce((s, t) => s + t.bytes, 0) / 4);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.61) * 0.1;
  writeRaw(join(dir, 'model.safetensors'), headerFor(tensors).header, new Uint8Array(data.buffer));
  return { dir, vocab };
}
