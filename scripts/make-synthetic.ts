/**
 * Writes a bf16 checkpoint with Phi-3-mini's exact tensor names and shapes (3,821,079,552 parameters:
 * 32 layers, hidden 3072, intermediate 8192, fused qkv_proj [9216, 3072] and gate_up_proj [16384, 3072],
 * vocab 32064, untied lm_head), in two shards with an index as the published checkpoint, plus its
 * config.json. Values: Gaussian (std 0.02) with heavy-tailed outliers (0.1% at 10-50x).
 *
 *   npx tsx scripts/make-synthetic.ts OUT_DIR [--layers N]
 *
 * With --config, any architecture `estimate` has formulas for instead: the tensors its config.json
 * describes (src/estimate/architectures.ts), one file, and that config.json. A vocab of 512 gets the
 * bundled stories260k tokenizer, so the model can be written as a runnable GGUF (small Llama-shaped
 * models for test/fixtures/llama-quantize-types.json: scripts/record-llama-quantize.ts).
 *
 *   npx tsx scripts/make-synthetic.ts OUT_DIR --config CONFIG_JSON
 *
 * Values come from a 64 Mi-entry pool of pre-drawn bf16 numbers read at pseudo-random offsets, which
 * keeps generation at disk speed; every 32-wide group still sees realistic, varied data.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { architectureShapes } from '../src/estimate/architectures.js';
import { SafetensorsWriter, type TensorEntry } from '../src/safetensors/writer.js';

const out = process.argv[2];
if (!out) {
  console.error('usage: make-synthetic OUT_DIR [--layers N | --config CONFIG_JSON]');
  process.exit(2);
}
const li = process.argv.indexOf('--layers');
const layers = li > 0 ? Number(process.argv[li + 1]) : 32;
const hidden = 3072, inter = 8192, vocab = 32064, heads = 32;
const ci = process.argv.indexOf('--config');
const config = ci > 0 ? (JSON.parse(readFileSync(process.argv[ci + 1]!, 'utf8')) as Record<string, unknown>) : undefined;

const tensors: TensorEntry[] = config ? architectureShapes(config, process.argv[ci + 1]).tensors.map((t) => ({ name: t.name, dtype: 'BF16' as const, shape: t.shape })) : [{ name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [vocab, hidden] }];
for (let l = 0; l < (config ? 0 : layers); l++) {
  const p = `model.layers.${l}`;
  tensors.push(
    { name: `${p}.input_layernorm.weight`, dtype: 'BF16', shape: [hidden] },
    { name: `${p}.mlp.down_proj.weight`, dtype: 'BF16', shape: [hidden, inter] },
    { name: `${p}.mlp.gate_up_proj.weight`, dtype: 'BF16', shape: [2 * inter, hidden] },
    { name: `${p}.post_attention_layernorm.weight`, dtype: 'BF16', shape: [hidden] },
    { name: `${p}.self_attn.o_proj.weight`, dtype: 'BF16', shape: [hidden, hidden] },
    { name: `${p}.self_attn.qkv_proj.weight`, dtype: 'BF16', shape: [3 * hidden, hidden] },
  );
}
if (!config) tensors.push({ name: 'model.norm.weight', dtype: 'BF16', shape: [hidden] }, { name: 'lm_head.weight', dtype: 'BF16', shape: [vocab, hidden] });
const count = (t: TensorEntry) => t.shape.reduce((a, b) => a * b, 1);
const params = tensors.reduce((s, t) => s + count(t), 0);

// Pool of bf16 values.
let seed = 0x2545f491;
const rand = () => ((seed = (seed ^ (seed << 13)) >>> 0), (seed = (seed ^ (seed >>> 17)) >>> 0), (seed = (seed ^ (seed << 5)) >>> 0), seed / 2 ** 32);
// (4 Mi entries serve the small --config models; 64 Mi the multi-GB default.)
const POOL = config ? 1 << 22 : 1 << 26;
const pool = new Uint16Array(POOL + (1 << 20));
const f = new Float32Array(1), u = new Uint32Array(f.buffer);
for (let i = 0; i < pool.length; i++) {
  const g = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()) * 0.02;
  f[0] = rand() < 0.001 ? g * (10 + 40 * rand()) : g;
  pool[i] = (u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) >>> 16;
}
const poolBytes = new Uint8Array(pool.buffer);

function fill(t: TensorEntry): Uint8Array[] {
  const n = count(t);
  if (t.shape.length === 1) return [new Uint8Array(new Uint16Array(n).fill(0x3f80).buffer)]; // norms = 1.0
  const chunks: Uint8Array[] = [];
  const step = 1 << 20; // elements per copied slice
  for (let done = 0; done < n; done += step) {
    const len = Math.min(step, n - done);
    const at = Math.floor(rand() * (POOL - len));
    chunks.push(poolBytes.subarray(at * 2, (at + len) * 2));
  }
  return chunks;
}

// Shards as the published checkpoint: the first up to 5 GB.
const shardOf: number[] = [];
let acc = 0;
for (const t of tensors) {
  acc += count(t) * 2;
  shardOf.push(acc > 5e9 ? 1 : 0);
}
mkdirSync(out, { recursive: true });
const shards = shardOf.includes(1) || !config ? 2 : 1;
const names = shards === 2 ? ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'] : ['model.safetensors'];
const started = Date.now();
for (let s = 0; s < shards; s++) {
  const entries = tensors.filter((_, i) => shardOf[i] === s);
  const w = await SafetensorsWriter.create(join(out, names[s]!), entries, { format: 'pt' });
  for (const t of entries) for (const c of fill(t)) await w.write(t.name, c);
  await w.finish();
}
const weight_map = Object.fromEntries(tensors.map((t, i) => [t.name, names[shardOf[i]!]!]));
if (shards === 2) writeFileSync(join(out, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: params * 2 }, weight_map }, null, 2));
if (config?.vocab_size === 512) {
  const bundled = new URL('../models/stories260k/', import.meta.url);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(new URL(f, bundled), join(out, f));
}
writeFileSync(join(out, 'config.json'), JSON.stringify(config ?? {
  architectures: ['Phi3ForCausalLM'], model_type: 'phi3', hidden_size: hidden, intermediate_size: inter,
  num_hidden_layers: layers, num_attention_heads: heads, num_key_value_heads: heads, vocab_size: vocab,
  max_position_embeddings: 4096, original_max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_theta: 10000.0,
  hidden_act: 'silu', tie_word_embeddings: false, torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 32000, pad_token_id: 32000,
  sliding_window: 2047, attention_dropout: 0.0, resid_pdrop: 0.0, embd_pdrop: 0.0, initializer_range: 0.02, use_cache: true,
}, null, 2));
console.log(`${out}: ${params.toLocaleString('en-US')} parameters, ${(params * 2 / 1e9).toFixed(2)} GB bf16 in ${shards} file(s), ${((Date.now() - started) / 1000).toFixed(1)} s`);
