/**
 * Writes a small diffusers pipeline folder laid out as the Hub's Stable Diffusion repositories are:
 * model_index.json; unet/ (UNet2DConditionModel names and shapes, 4-D convs included, F16,
 * diffusion_pytorch_model.safetensors or two shards with diffusion_pytorch_model.safetensors.index.json);
 * text_encoder/ (CLIPTextModel names and shapes, F32, model.safetensors); scheduler/, tokenizer/ and a
 * README as the configuration around them; and an image quantkit does not copy. Seeded random values
 * (Gaussian weights with a few outliers, norm gains near 1): the same bytes on every run.
 *
 *   npx tsx scripts/make-diffusers-pipeline.ts OUT_DIR [--sharded]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { f32ToF16 } from '../src/convert.js';
import { SafetensorsWriter, type TensorEntry } from '../src/safetensors/writer.js';

interface Tensor extends TensorEntry {
  /** Standard deviation of the values; norm gains are 1 + N(0, std). */
  std: number;
  norm?: boolean;
}

const CH = [32, 64];
const TEXT = { hidden: 32, inter: 37, layers: 2, heads: 4, vocab: 1000, positions: 77 };

function unetTensors(): Tensor[] {
  const t: Tensor[] = [];
  const w = (name: string, shape: number[], std = 0.05) => t.push({ name, dtype: 'F16', shape, std });
  const norm = (name: string, c: number) => t.push({ name: `${name}.weight`, dtype: 'F16', shape: [c], std: 0.02, norm: true }, { name: `${name}.bias`, dtype: 'F16', shape: [c], std: 0.02 });
  const conv = (name: string, out: number, inp: number, k = 3) => (w(`${name}.weight`, [out, inp, k, k]), w(`${name}.bias`, [out], 0.01));
  const linear = (name: string, out: number, inp: number, bias = true) => (w(`${name}.weight`, [out, inp]), bias ? w(`${name}.bias`, [out], 0.01) : undefined);
  const temb = CH[0]! * 4;
  conv('conv_in', CH[0]!, 4);
  linear('time_embedding.linear_1', temb, CH[0]!);
  linear('time_embedding.linear_2', temb, temb);
  const resnet = (p: string, inp: number, out: number) => {
    norm(`${p}.norm1`, inp);
    conv(`${p}.conv1`, out, inp);
    linear(`${p}.time_emb_proj`, out, temb);
    norm(`${p}.norm2`, out);
    conv(`${p}.conv2`, out, out);
    if (inp !== out) conv(`${p}.conv_shortcut`, out, inp, 1);
  };
  const attention = (p: string, c: number) => {
    norm(`${p}.norm`, c);
    linear(`${p}.proj_in`, c, c);
    const b = `${p}.transformer_blocks.0`;
    for (const a of ['attn1', 'attn2']) {
      norm(`${b}.${a === 'attn1' ? 'norm1' : 'norm2'}`, c);
      linear(`${b}.${a}.to_q`, c, c, false);
      linear(`${b}.${a}.to_k`, c, a === 'attn1' ? c : TEXT.hidden, false);
      linear(`${b}.${a}.to_v`, c, a === 'attn1' ? c : TEXT.hidden, false);
      linear(`${b}.${a}.to_out.0`, c, c);
    }
    norm(`${b}.norm3`, c);
    linear(`${b}.ff.net.0.proj`, c * 8, c);
    linear(`${b}.ff.net.2`, c, c * 4);
    linear(`${p}.proj_out`, c, c);
  };
  resnet('down_blocks.0.resnets.0', CH[0]!, CH[0]!);
  attention('down_blocks.0.attentions.0', CH[0]!);
  conv('down_blocks.0.downsamplers.0.conv', CH[0]!, CH[0]!);
  resnet('down_blocks.1.resnets.0', CH[0]!, CH[1]!);
  resnet('mid_block.resnets.0', CH[1]!, CH[1]!);
  attention('mid_block.attentions.0', CH[1]!);
  resnet('up_blocks.0.resnets.0', CH[1]! + CH[0]!, CH[1]!);
  conv('up_blocks.0.upsamplers.0.conv', CH[1]!, CH[1]!);
  resnet('up_blocks.1.resnets.0', CH[1]! + CH[0]!, CH[0]!);
  attention('up_blocks.1.attentions.0', CH[0]!);
  norm('conv_norm_out', CH[0]!);
  conv('conv_out', 4, CH[0]!);
  return t;
}

function textEncoderTensors(): Tensor[] {
  const { hidden: h, inter, layers, vocab, positions } = TEXT;
  const t: Tensor[] = [
    { name: 'text_model.embeddings.token_embedding.weight', dtype: 'F32', shape: [vocab, h], std: 0.02 },
    { name: 'text_model.embeddings.position_embedding.weight', dtype: 'F32', shape: [positions, h], std: 0.01 },
  ];
  const add = (name: string, shape: number[], std: number, norm = false) => t.push({ name, dtype: 'F32', shape, std, ...(norm ? { norm } : {}) });
  for (let l = 0; l < layers; l++) {
    const p = `text_model.encoder.layers.${l}`;
    for (const n of ['layer_norm1', 'layer_norm2']) add(`${p}.${n}.weight`, [h], 0.02, true), add(`${p}.${n}.bias`, [h], 0.02);
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) add(`${p}.self_attn.${n}.weight`, [h, h], 0.05), add(`${p}.self_attn.${n}.bias`, [h], 0.01);
    add(`${p}.mlp.fc1.weight`, [inter, h], 0.05), add(`${p}.mlp.fc1.bias`, [inter], 0.01);
    add(`${p}.mlp.fc2.weight`, [h, inter], 0.05), add(`${p}.mlp.fc2.bias`, [h], 0.01);
  }
  add('text_model.final_layer_norm.weight', [h], 0.02, true);
  add('text_model.final_layer_norm.bias', [h], 0.02);
  return t;
}

/** xorshift32 with a Box-Muller Gaussian: a fixed seed gives the same folder everywhere. */
function gaussian(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const u = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), ((s >>> 0) + 0.5) / 2 ** 32);
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function values(t: Tensor, g: () => number): Uint8Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = g() * t.std * (!t.norm && i % 97 === 13 ? 8 : 1); // a few outliers per row
    f[i] = t.norm ? 1 + v : v;
  }
  if (t.dtype === 'F32') return new Uint8Array(f.buffer);
  return new Uint8Array(Uint16Array.from(f, f32ToF16).buffer);
}

async function writeWeights(dir: string, stem: string, tensors: Tensor[], shards: number, seed: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const g = gaussian(seed);
  const per = Math.ceil(tensors.length / shards);
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let s = 0; s < shards; s++) {
    const part = tensors.slice(s * per, (s + 1) * per);
    const name = shards === 1 ? `${stem}.safetensors` : `${stem}-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const w = await SafetensorsWriter.create(join(dir, name), part, { format: 'pt' });
    for (const t of part) {
      const bytes = values(t, g);
      total += bytes.length;
      weightMap[t.name] = name;
      await w.write(t.name, bytes);
    }
    await w.finish();
  }
  if (shards > 1) writeFileSync(join(dir, `${stem}.safetensors.index.json`), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
}

const json = (path: string, v: unknown) => writeFileSync(path, JSON.stringify(v, null, 2) + '\n');

/** The tensors each component holds (tests compare against them). */
export const PIPELINE_TENSORS = { unet: unetTensors(), text_encoder: textEncoderTensors() };

/** Writes the pipeline folder into `dir` (created); `sharded` splits the UNet into two shards with an index. */
export async function makeDiffusersPipeline(dir: string, o: { sharded?: boolean } = {}): Promise<string> {
  mkdirSync(dir, { recursive: true });
  json(join(dir, 'model_index.json'), {
    _class_name: 'StableDiffusionPipeline',
    _diffusers_version: '0.27.2',
    feature_extractor: [null, null],
    safety_checker: [null, null],
    requires_safety_checker: false,
    scheduler: ['diffusers', 'PNDMScheduler'],
    text_encoder: ['transformers', 'CLIPTextModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
  });
  writeFileSync(join(dir, 'README.md'), '# tiny-sd-pipeline\n\nRandom weights in the layout of a Stable Diffusion pipeline, for tests.\n');
  writeFileSync(join(dir, 'preview.png'), Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex'));

  await writeWeights(join(dir, 'unet'), 'diffusion_pytorch_model', PIPELINE_TENSORS.unet, o.sharded ? 2 : 1, 1);
  json(join(dir, 'unet', 'config.json'), {
    _class_name: 'UNet2DConditionModel',
    _diffusers_version: '0.27.2',
    act_fn: 'silu',
    attention_head_dim: 8,
    block_out_channels: CH,
    center_input_sample: false,
    cross_attention_dim: TEXT.hidden,
    down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'],
    in_channels: 4,
    layers_per_block: 1,
    norm_num_groups: 32,
    out_channels: 4,
    sample_size: 8,
    up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'],
  });

  await writeWeights(join(dir, 'text_encoder'), 'model', PIPELINE_TENSORS.text_encoder, 1, 2);
  json(join(dir, 'text_encoder', 'config.json'), {
    architectures: ['CLIPTextModel'],
    model_type: 'clip_text_model',
    hidden_act: 'quick_gelu',
    hidden_size: TEXT.hidden,
    intermediate_size: TEXT.inter,
    max_position_embeddings: TEXT.positions,
    num_attention_heads: TEXT.heads,
    num_hidden_layers: TEXT.layers,
    projection_dim: TEXT.hidden,
    torch_dtype: 'float32',
    vocab_size: TEXT.vocab,
  });

  mkdirSync(join(dir, 'scheduler'));
  json(join(dir, 'scheduler', 'scheduler_config.json'), { _class_name: 'PNDMScheduler', _diffusers_version: '0.27.2', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085, num_train_timesteps: 1000, skip_prk_steps: true });
  mkdirSync(join(dir, 'tokenizer'));
  const vocab = Object.fromEntries(['<|startoftext|>', '<|endoftext|>', 'a</w>', 'cat</w>', 'photo</w>', 'of</w>'].map((t, i) => [t, i]));
  json(join(dir, 'tokenizer', 'vocab.json'), vocab);
  writeFileSync(join(dir, 'tokenizer', 'merges.txt'), '#version: 0.2\nc a\nca t</w>\n');
  json(join(dir, 'tokenizer', 'special_tokens_map.json'), { bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>' });
  json(join(dir, 'tokenizer', 'tokenizer_config.json'), { model_max_length: TEXT.positions, tokenizer_class: 'CLIPTokenizer' });
  return dir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: make-diffusers-pipeline OUT_DIR [--sharded]');
    process.exit(2);
  }
  await makeDiffusersPipeline(out, { sharded: process.argv.includes('--sharded') });
  console.log(out);
}
