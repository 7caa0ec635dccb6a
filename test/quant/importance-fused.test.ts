/**
 * Phi-3 stores q/k/v as one qkv_proj and gate/up as one gate_up_proj. The importance estimate must read
 * their parts as row ranges: stories260k rewritten with Phi-3's fused tensors (the same weights, rows
 * concatenated as Phi-3 stores them) must get the importance of the Llama original, float for float,
 * and the search must then quantize the fused matrices as it quantizes their Llama parts.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { quantizeInMemory } from '../../src/eval/quantized-values.js';
import { planQuantization } from '../../src/plan.js';
import { estimateColumnImportance } from '../../src/quant/importance.js';
import { headerFor, writeRaw } from '../helpers/fixtures.js';
import { STORIES260K, loadFloatTensors, tempDir } from '../helpers/models.js';

const LAYERS = 5;

/** stories260k with each layer's q/k/v fused into qkv_proj and gate/up into gate_up_proj (Phi-3's layout). */
async function fusedStories(dir: string): Promise<string> {
  const llama = await loadFloatTensors(STORIES260K);
  const tensors: { name: string; dtype: string; shape: number[]; raw: Uint8Array }[] = [];
  const fuse = (name: string, parts: string[]) => {
    const ts = parts.map((p) => llama.get(p)!);
    const raw = new Uint8Array(ts.reduce((n, t) => n + t.raw.length, 0));
    let at = 0;
    for (const t of ts) raw.set(t.raw, (at += t.raw.length) - t.raw.length);
    tensors.push({ name, dtype: ts[0]!.dtype, shape: [ts.reduce((n, t) => n + t.shape[0]!, 0), ts[0]!.shape[1]!], raw });
  };
  const fusedAway = /self_attn\.[qkv]_proj|mlp\.(gate|up)_proj/;
  for (const [name, t] of llama) if (!fusedAway.test(name)) tensors.push({ name, dtype: t.dtype, shape: t.shape, raw: t.raw });
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}.`;
    fuse(`${p}self_attn.qkv_proj.weight`, ['q', 'k', 'v'].map((x) => `${p}self_attn.${x}_proj.weight`));
    fuse(`${p}mlp.gate_up_proj.weight`, [`${p}mlp.gate_proj.weight`, `${p}mlp.up_proj.weight`]);
  }
  const { header, dataBytes } = headerFor(tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.raw.length })));
  const data = new Uint8Array(dataBytes);
  let at = 0;
  for (const t of tensors) data.set(t.raw, (at += t.raw.length) - t.raw.length);
  writeRaw(join(dir, 'model.safetensors'), header, data);
  const config = JSON.parse(readFileSync(join(STORIES260K, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, architectures: ['Phi3ForCausalLM'], model_type: 'phi3' }));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(STORIES260K, f), join(dir, f));
  return dir;
}

async function importanceOf(dir: string): Promise<Map<string, Float32Array>> {
  const ckpt = await Checkpoint.open(dir);
  try {
    return await estimateColumnImportance(ckpt);
  } finally {
    await ckpt.close();
  }
}

describe('importance of Phi-3\'s fused qkv_proj and gate_up_proj', () => {
  const dir = tempDir('quantkit-phi3-fused-');
  let built: Promise<string> | undefined;
  const fusedModel = () => (built ??= fusedStories(dir));  // built once, by whichever test runs first

  it('equals the Llama original\'s, float for float, through every layer to the output head', async () => {
    const fused = await importanceOf(await fusedModel());
    const llama = await importanceOf(STORIES260K);
    expect([...fused.keys()].sort()).toEqual(
      ['model.embed_tokens.weight', ...Array.from({ length: LAYERS }, (_, l) => [`model.layers.${l}.mlp.gate_up_proj.weight`, `model.layers.${l}.self_attn.qkv_proj.weight`]).flat()].sort(),
    );
    for (let l = 0; l < LAYERS; l++) {
      const p = `model.layers.${l}.`;
      expect(fused.get(`${p}self_attn.qkv_proj.weight`)).toEqual(llama.get(`${p}self_attn.q_proj.weight`));
      expect(fused.get(`${p}mlp.gate_up_proj.weight`)).toEqual(llama.get(`${p}mlp.gate_proj.weight`));
    }
    // The head's importance carries the residual estimate of all layers: the value rows (the last
    // kv heads of qkv_proj) were read where they are, and gate_up_proj's rows too (which half is gate
    // and which is up the estimate does not see: it uses their product).
    expect(fused.get('model.embed_tokens.weight')).toEqual(llama.get('model.embed_tokens.weight'));
  });

  it('makes the search quantize qkv_proj as it quantizes q, k and v (and not as unweighted)', async () => {
    const quantized = async (model: string, importance: Map<string, Float32Array>) => {
      const ckpt = await Checkpoint.open(model);
      try {
        const plan = await planQuantization(ckpt, { bits: 4, format: 'safetensors', quantMethod: 'search' });
        return (await quantizeInMemory(ckpt, plan, { importance, keepValues: true, threads: 2 })).values;
      } finally {
        await ckpt.close();
      }
    };
    const model = await fusedModel();
    const fused = await quantized(model, await importanceOf(model));
    const unweighted = await quantized(model, new Map());
    const llama = await quantized(STORIES260K, await importanceOf(STORIES260K));
    const p = 'model.layers.2.';
    const concat = (names: string[]) => Float32Array.from(names.flatMap((n) => [...llama.get(n)!]));
    const qkv = fused.get(`${p}self_attn.qkv_proj.weight`)!;
    expect(qkv).toEqual(concat(['q', 'k', 'v'].map((x) => `${p}self_attn.${x}_proj.weight`)));
    expect(fused.get(`${p}mlp.gate_up_proj.weight`)).toEqual(concat([`${p}mlp.gate_proj.weight`, `${p}mlp.up_proj.weight`]));
    expect(unweighted.get(`${p}self_attn.qkv_proj.weight`)).not.toEqual(qkv);
  });
});
