/**
 * Diffusers pipeline folders (model_index.json, unet/, text_encoder/, scheduler/, tokenizer/): quantized
 * whole, each component with its own plan and report, file names kept, the rest copied, one report for
 * the pipeline; --keep / --bits-for name components; GGUF refused or limited, clearly. The pipeline is
 * generated (scripts/make-diffusers-pipeline.ts): UNet and CLIP text encoder names and shapes, 4-D convs.
 */
import { cpSync, existsSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PIPELINE_TENSORS, makeDiffusersPipeline } from '../scripts/make-diffusers-pipeline.js';
import { Checkpoint } from '../src/checkpoint.js';
import { componentGlobs, componentRules } from '../src/pipeline.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/models.js';

const dir = tempDir('quantkit-pipeline-');
const sharded = join(dir, 'sd-sharded');
const single = join(dir, 'sd');
const read = (p: string) => readFileSync(p);
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

beforeAll(async () => {
  await makeDiffusersPipeline(sharded, { sharded: true });
  await makeDiffusersPipeline(single);
});

describe('quantize a diffusers pipeline folder', () => {
  const out = join(dir, 'sd-w4');
  let r: ReturnType<typeof runCli>;
  beforeAll(() => {
    r = runCli(['quantize', sharded, '--keep', 'unet/*attn*', '--bits', '4', '--bits-for', 'text_encoder/*fc1*=8', '--keep', '*norm*', '-o', out]);
  });

  it('writes every component under its own file names and copies the rest', () => {
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['README.md', 'model_index.json', 'quantization-report.json', 'scheduler', 'text_encoder', 'tokenizer', 'unet']);
    expect(readdirSync(join(out, 'unet')).sort()).toEqual(['config.json', 'diffusion_pytorch_model.safetensors', 'quantization-report.json']);
    expect(readdirSync(join(out, 'text_encoder')).sort()).toEqual(['config.json', 'model.safetensors', 'quantization-report.json']);
    for (const f of ['model_index.json', 'README.md', 'scheduler/scheduler_config.json', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'tokenizer/special_tokens_map.json', 'tokenizer/tokenizer_config.json'])
      expect(read(join(out, f)).equals(read(join(sharded, f))), f).toBe(true);
    expect(existsSync(join(out, 'preview.png'))).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('quantkit-'))).toEqual([]);
    expect(json(join(out, 'unet', 'config.json')).quantization_config.format).toBe('pack-quantized');
    expect(json(join(out, 'unet', 'config.json'))._class_name).toBe('UNet2DConditionModel');
  });

  it('one report for the pipeline, one per component, naming the published folders', () => {
    const p = json(join(out, 'quantization-report.json'));
    expect(p).toMatchObject({ pipeline: 'diffusers', source: sharded, output: out });
    expect(p.components.map((c: { name: string; output: string; report: string }) => [c.name, c.output, c.report])).toEqual([
      ['text_encoder', join(out, 'text_encoder'), 'text_encoder/quantization-report.json'],
      ['unet', join(out, 'unet'), 'unet/quantization-report.json'],
    ]);
    expect(p.components.every((c: { sizes_equal_prediction: boolean }) => c.sizes_equal_prediction)).toBe(true);
    expect(p.not_copied).toEqual([{ path: 'preview.png', reason: 'not a configuration, tokenizer or text file' }]);
    expect(p.copied.map((c: { path: string }) => c.path)).toContain('scheduler/scheduler_config.json');
    const unet = json(join(out, 'unet', 'quantization-report.json'));
    expect(unet.output).toBe(join(out, 'unet'));
    expect(unet.source).toBe(join(sharded, 'unet'));
    expect(p.totals.quantizedTensors).toBe(unet.totals.quantizedTensors + json(join(out, 'text_encoder', 'quantization-report.json')).totals.quantizedTensors);
  });

  it('component globs reach only their component; plain globs reach all; 4-D convs are quantized per output channel', () => {
    const unet = json(join(out, 'unet', 'quantization-report.json'));
    const text = json(join(out, 'text_encoder', 'quantization-report.json'));
    const planOf = (rep: { plan: { name: string; treatment: string; format: string; reason?: string }[] }, name: string) => rep.plan.find((p) => p.name === name)!;
    for (const p of unet.plan.filter((x: { name: string }) => /attn/.test(x.name))) expect(p.reason).toBe('matches --keep');
    expect(planOf(unet, 'down_blocks.0.resnets.0.norm1.weight').reason).toBe('matches --keep');
    expect(planOf(text, 'text_model.encoder.layers.0.layer_norm1.weight').reason).toBe('matches --keep');
    expect(planOf(text, 'text_model.encoder.layers.0.mlp.fc1.weight').format).toMatch(/^int8 row sym( auto)?$/); // rows of 32
    expect(planOf(text, 'text_model.encoder.layers.0.self_attn.q_proj.weight').format).toMatch(/^int4 row sym( auto)?$/); // unet/*attn* is not the text encoder's
    expect(planOf(text, 'text_model.embeddings.token_embedding.weight').treatment).toBe('quantized'); // the default (auto) quantizes every matrix
    const conv = unet.tensors.find((t: { name: string }) => t.name === 'down_blocks.0.resnets.0.conv1.weight');
    expect(conv).toMatchObject({ shape: [32, 32, 3, 3], treatment: 'quantized', format: 'int4 g32 sym' });
    expect(conv.relRmse).toBeGreaterThan(0);
    expect(conv.relRmse).toBeLessThan(0.2);
    expect(unet.tensors).toHaveLength(PIPELINE_TENSORS.unet.length);
  });

  it('the written component opens as a checkpoint of the same name, and verify checks the whole folder', async () => {
    const ckpt = await Checkpoint.open(join(out, 'unet'));
    try {
      expect(ckpt.files).toEqual([join(out, 'unet', 'diffusion_pytorch_model.safetensors')]);
      expect(ckpt.tensor('conv_in.weight_packed')!.shape).toEqual([32, Math.ceil((4 * 9 * 4) / 32)]); // [out, in·kh·kw] at 4 bits
      expect(ckpt.tensor('conv_in.weight_shape')).toBeDefined();
    } finally {
      await ckpt.close();
    }
    const v = runCli(['verify', out, '--against', sharded, '--json']);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout).components.map((c: { name: string }) => c.name)).toEqual(['text_encoder', 'unet']);
  });

  it('plan prints every component and writes nothing', () => {
    const p = runCli(['plan', sharded, '--json', '--keep', 'unet/*']);
    expect(p.code, p.stderr).toBe(0);
    const plan = JSON.parse(p.stdout);
    expect(plan.components.map((c: { component: string }) => c.component)).toEqual(['text_encoder', 'unet']);
    const unetFiles = plan.components[1].files.map((f: { name: string }) => f.name);
    expect(unetFiles).toEqual(['diffusion_pytorch_model.safetensors', 'config.json']);
    expect(plan.components[1].tensors.every((t: { treatment: string }) => t.treatment === 'kept')).toBe(true);
    expect(plan.components[0].tensors.some((t: { treatment: string }) => t.treatment === 'quantized')).toBe(true);
    expect(readdirSync(dir).filter((n) => n.startsWith('sd-sharded-'))).toEqual([]);
    expect(plan.not_copied).toEqual([{ path: 'preview.png', reason: 'not a configuration, tokenizer or text file' }]);
  });
});

describe('single components and files keep their names', () => {
  it('a component folder and its lone diffusion_pytorch_model.safetensors', () => {
    for (const [input, out] of [[join(single, 'unet'), join(dir, 'unet-w8')], [join(single, 'unet', 'diffusion_pytorch_model.safetensors'), join(dir, 'unet-file-w8')]] as const) {
      const r = runCli(['quantize', input, '--bits', '8', '-o', out, '-q']);
      expect(r.code, r.stderr).toBe(0);
      expect(readdirSync(out).filter((f) => f.endsWith('.safetensors'))).toEqual(['diffusion_pytorch_model.safetensors']);
    }
  });

  it('sharded output keeps the stem: diffusion_pytorch_model-0000N-of-0000M with its index', () => {
    const out = join(dir, 'unet-shards');
    const r = runCli(['quantize', join(sharded, 'unet'), '--max-shard-size', '150kB', '-o', out, '-q']);
    expect(r.code, r.stderr).toBe(0);
    const files = readdirSync(out).filter((f) => f.includes('diffusion_pytorch_model')).sort();
    expect(files[files.length - 1]).toBe('diffusion_pytorch_model.safetensors.index.json');
    expect(files.slice(0, -1).every((f) => /^diffusion_pytorch_model-\d{5}-of-\d{5}\.safetensors$/.test(f))).toBe(true);
    expect(files.length).toBeGreaterThan(2);
  });
});

describe('what a pipeline refuses, before writing anything', () => {
  it('--format gguf: no llama.cpp architecture (exit 2); gguf-raw: a UNet name over GGUF 63 bytes (exit 3)', () => {
    const g = runCli(['quantize', single, '--format', 'gguf', '-o', join(dir, 'g')]);
    expect(g.code).toBe(2);
    expect(g.stderr).toMatch(/--format gguf-raw .* or --format safetensors/);
    const raw = runCli(['quantize', single, '--format', 'gguf-raw', '-o', join(dir, 'graw')]);
    expect(raw.code).toBe(3);
    expect(raw.stderr).toMatch(new RegExp(`^quantkit: ${join(single, 'unet')}: tensor '[^']+': name is longer than GGUF's 63 bytes`));
    expect(existsSync(join(dir, 'g')) || existsSync(join(dir, 'graw'))).toBe(false);
  });

  it('a component glob that names no component', () => {
    const r = runCli(['quantize', single, '--keep', 'vae/*', '-o', join(dir, 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("quantkit: --keep 'vae/*' names no component of this pipeline (components: text_encoder, unet)\n");
  });

  it('a declared component whose weights are not safetensors', async () => {
    const p = await makeDiffusersPipeline(join(dir, 'sd-bin'));
    renameSync(join(p, 'text_encoder', 'model.safetensors'), join(p, 'text_encoder', 'pytorch_model.bin'));
    const r = runCli(['quantize', p, '-o', join(dir, 'y')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/text_encoder: component 'text_encoder' has no diffusion_pytorch_model\.safetensors or model\.safetensors \(it has pytorch_model\.bin\)/);
  });

  it('commands that take one model point a pipeline folder to its components', () => {
    const r = runCli(['estimate', single, '--scenario', 'packed', '--bits', '4']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/a diffusers pipeline folder \(model_index\.json\).*one component folder/);
    const c = runCli(['estimate', join(single, 'unet'), '--scenario', 'packed', '--bits', '4', '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(Object.keys(JSON.parse(c.stdout).components)).toContain('diffusion_pytorch_model.safetensors');
  });

  it('variant-only weights are named in the refusal', () => {
    const v = join(dir, 'variant');
    cpSync(join(single, 'unet'), v, { recursive: true });
    renameSync(join(v, 'diffusion_pytorch_model.safetensors'), join(v, 'diffusion_pytorch_model.fp16.safetensors'));
    const r = runCli(['plan', v]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/only variant weights here \(diffusion_pytorch_model\.fp16\.safetensors\)/);
  });
});

describe('component globs', () => {
  it('COMPONENT/GLOB applies to matching components, GLOB to all', () => {
    expect(componentGlobs(['*norm*', 'unet/*attn*', 'text_*/*fc1*', '*/conv_in*'], 'unet')).toEqual(['*norm*', '*attn*', 'conv_in*']);
    expect(componentGlobs(['*norm*', 'unet/*attn*', 'text_*/*fc1*'], 'text_encoder')).toEqual(['*norm*', '*fc1*']);
    expect(componentRules(['unet/*attn*=8', '*mlp*=4', 'bad'], 'unet')).toEqual(['*attn*=8', '*mlp*=4', 'bad']);
    expect(componentRules(['unet/*attn*=8'], 'vae')).toEqual([]);
  });
});
