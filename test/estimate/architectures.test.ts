/** Parameter formulas from config.json: exact against real checkpoints and published counts. */
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { architectureShapes, SUPPORTED_ARCHITECTURES } from '../../src/estimate/architectures.js';
import { openLocalModel } from '../../src/estimate/model.js';
import { loraParams } from '../../src/estimate/finetune.js';
import { STORIES260K, TINYSTORIES656K } from '../helpers/models.js';

const count = (c: Record<string, unknown>) => architectureShapes(c).tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);

describe('architecture formulas', () => {
  for (const dir of [STORIES260K, TINYSTORIES656K]) {
    it(`reproduce every tensor of ${dir.split('/').pop()} from its config.json`, async () => {
      const ckpt = await Checkpoint.open(dir);
      try {
        const fromConfig = architectureShapes(ckpt.config!);
        const stored = new Map(ckpt.tensors.map((t) => [t.name, t.shape]));
        // Tied weights: the checkpoint may store either name of the pair.
        for (const [alias, target] of ckpt.aliases) if (!stored.has(target)) stored.set(target, stored.get(alias)!);
        const expected = new Map(fromConfig.tensors.map((t) => [t.name, t.shape]));
        for (const [name, shape] of expected) expect(stored.get(name) ?? stored.get(ckpt.aliases.get(name) ?? ''), name).toEqual(shape);
        const model = await openLocalModel(dir);
        expect(count(ckpt.config!)).toBe(model.params);
        await model.checkpoint.close();
      } finally {
        await ckpt.close();
      }
    });
  }

  // Published parameter counts of public checkpoints, from their config.json values.
  const published: [string, number, Record<string, unknown>][] = [
    ['gpt2', 124_439_808, { model_type: 'gpt2', n_embd: 768, n_layer: 12, n_head: 12, vocab_size: 50257, n_positions: 1024 }],
    ['Mistral-7B-v0.1', 7_241_732_096, { model_type: 'mistral', hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 32000 }],
    ['Mixtral-8x7B', 46_702_792_704, { model_type: 'mixtral', hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 32000, num_local_experts: 8, num_experts_per_tok: 2 }],
    ['Qwen2-7B', 7_615_616_512, { model_type: 'qwen2', hidden_size: 3584, num_hidden_layers: 28, num_attention_heads: 28, num_key_value_heads: 4, intermediate_size: 18944, vocab_size: 152064, tie_word_embeddings: false }],
    ['gemma-7b', 8_537_680_896, { model_type: 'gemma', hidden_size: 3072, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 16, head_dim: 256, intermediate_size: 24576, vocab_size: 256000 }],
    ['Phi-3-mini-4k', 3_821_079_552, { model_type: 'phi3', hidden_size: 3072, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, intermediate_size: 8192, vocab_size: 32064 }],
    ['starcoder (gpt_bigcode)', 15_517_456_384, { model_type: 'gpt_bigcode', n_embd: 6144, n_layer: 40, n_head: 48, n_inner: 24576, vocab_size: 49152, n_positions: 8192 }],
    ['pythia-160m', 162_322_944, { model_type: 'gpt_neox', hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, vocab_size: 50304 }],
    ['opt-125m', 125_239_296, { model_type: 'opt', hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, ffn_dim: 3072, vocab_size: 50272, max_position_embeddings: 2048 }],
    ['bloom-560m', 559_214_592, { model_type: 'bloom', hidden_size: 1024, n_layer: 24, n_head: 16, vocab_size: 250880 }],
    ['falcon-7b', 6_921_720_704, { model_type: 'falcon', hidden_size: 4544, num_hidden_layers: 32, num_attention_heads: 71, vocab_size: 65024, multi_query: true, parallel_attn: true, bias: false }],
    ['falcon-40b', 41_303_293_952, { model_type: 'falcon', hidden_size: 8192, num_hidden_layers: 60, num_attention_heads: 128, num_kv_heads: 8, vocab_size: 65024, new_decoder_architecture: true, parallel_attn: true, bias: false }],
  ];
  for (const [name, params, config] of published) it(`${name}: ${params.toLocaleString('en-US')} parameters`, () => expect(count(config)).toBe(params));

  it('covers every architecture the issue names', () => {
    for (const a of ['llama', 'mistral', 'mixtral', 'qwen2', 'phi3', 'gemma', 'gpt2', 'gpt_bigcode', 'gpt_neox', 'opt', 'bloom', 'falcon']) expect(SUPPORTED_ARCHITECTURES).toContain(a);
  });

  it('names the supported architectures when it has no formulas', () => {
    expect(() => architectureShapes({ model_type: 'rwkv' })).toThrow(/model_type 'rwkv' has no parameter formulas; supported: llama, mistral/);
    expect(() => architectureShapes({ model_type: 'llama', hidden_size: 64 })).toThrow(/num_hidden_layers/);
  });

  it('counts LoRA parameters as r(d_in + d_out) per adapted matrix (Llama-2-7B, r=8 on q and v: 4,194,304)', () => {
    const { tensors } = architectureShapes({ model_type: 'llama', hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, intermediate_size: 11008, vocab_size: 32000 });
    expect(loraParams(tensors, 8, ['q_proj', 'v_proj'])).toBe(4_194_304);
    expect(loraParams(tensors, 8, ['all-linear'])).toBeGreaterThan(loraParams(tensors, 8, ['q_proj', 'v_proj', 'k_proj', 'o_proj']));
  });
});
