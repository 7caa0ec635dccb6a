/** `estimate`: packed sizes equal quantize's output byte for byte; scenario arithmetic; the CLI contract. */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { estimateLocal, estimateModel } from '../../src/estimate/estimate.js';
import { fromConfig } from '../../src/estimate/model.js';
import { parseParallel } from '../../src/estimate/parallel.js';
import { quantize, REPORT_FILE } from '../../src/quantize.js';
import { CONFIGS } from '../../scripts/memory-cases.js';
import { CLI, STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';

const dir = tempDir();
const GB = 1e9;
const model = (name: string) => fromConfig(CONFIGS[name]!, `${name}/config.json`, name);

describe('estimate and quantize agree byte for byte', () => {
  const variants = [
    { bits: 4, format: 'gguf' },
    { bits: 8, format: 'gguf' },
    { bits: 4, format: 'safetensors', groupSize: 32 },
    { bits: 8, format: 'safetensors', groupSize: 'row' },
    { bits: 4, format: 'safetensors', mode: 'asym', groupSize: 64, keep: ['*embed*'], bitsFor: ['*down_proj*=8'] },
  ] as const;
  for (const m of [STORIES260K, TINYSTORIES656K])
    for (const [i, v] of variants.entries()) {
      it(`${m.split('/').pop()} ${JSON.stringify(v)}`, async () => {
        const est = await estimateLocal(m, { scenario: 'packed', ...v, keep: 'keep' in v ? [...v.keep] : undefined, bitsFor: 'bitsFor' in v ? [...v.bitsFor] : undefined });
        const out = join(dir, `${m.split('/').pop()}-${i}`);
        const { report } = await quantize(m, { ...v, keep: 'keep' in v ? [...v.keep] : undefined, bitsFor: 'bitsFor' in v ? [...v.bitsFor] : undefined, output: out, threads: 1 });
        const written = readdirSync(out).filter((f) => f !== REPORT_FILE).reduce((s, f) => s + statSync(join(out, f)).size, 0);
        expect(est.peak_bytes).toBe(written);
        // quantize records the memory prediction made before writing, and its weights are what was written.
        expect(report.predicted_memory).not.toBeNull();
        expect(report.predicted_memory!.components.weights).toBe(report.predicted_memory!.weights_bytes_written);
        const onDisk = JSON.parse(readFileSync(join(out, REPORT_FILE), 'utf8'));
        expect(onDisk.predicted_memory.peak_bytes).toBe(report.predicted_memory!.peak_bytes);
      });
    }
});

describe('scenario arithmetic', () => {
  it('reproduces the seed\'s numbers: GPT-3 175B bf16 weights ~350 GB, LLaMA-7B full fine-tuning 16/8 bytes per parameter', async () => {
    const gpt3 = fromConfig({ model_type: 'gpt2', n_embd: 12288, n_layer: 96, n_head: 96, vocab_size: 50257, n_positions: 2048 }, 'gpt3/config.json');
    expect(gpt3.params / 1e9).toBeCloseTo(174.6, 1);
    const w = await estimateModel(gpt3, { batch: 0, peak: 'allocator' });
    expect(w.components.weights! / GB).toBeCloseTo(349.2, 0);
    const llama7b = fromConfig({ model_type: 'llama', hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, intermediate_size: 11008, vocab_size: 32000 }, 'llama-7b/config.json');
    expect(llama7b.params).toBe(6_738_415_616);
    const states = async (precision: 'mixed' | 'bf16') => {
      const e = await estimateModel(llama7b, { scenario: 'finetune', batch: 0, precision, convention: 'zero-paper', peak: 'allocator' });
      return e.peak_bytes;
    };
    expect(await states('mixed')).toBe(16 * llama7b.params);
    expect(await states('bf16')).toBe(8 * llama7b.params);
  });

  it('sizes the KV cache by KV heads (OctoCoder at 16,000 tokens: MQA 0.33 GB, MHA would be 15.7 GB)', async () => {
    const mqa = await estimateModel(model('octocoder'), { seq: 16000 });
    expect(mqa.components.kv_cache! / GB).toBeCloseTo(0.328, 3);
    const mha = await estimateModel(fromConfig({ ...CONFIGS.octocoder, multi_query: false }, 'x/config.json'), { seq: 16000 });
    expect(mha.components.kv_cache! / GB).toBeCloseTo(15.73, 2);
    const int8kv = await estimateModel(model('octocoder'), { seq: 16000, kvBytes: 1 });
    expect(int8kv.components.kv_cache).toBe(mqa.components.kv_cache! / 2);
  });

  it('shrinks per-GPU memory with each ZeRO stage and with tensor parallelism', async () => {
    const m = model('llama-3.1-8b');
    const peak = async (parallel: string) => (await estimateModel(m, { scenario: 'finetune', gpus: 8, parallel, batch: 1, seq: 2048 })).peak_bytes;
    const [ddp, z1, z2, z3] = [await peak('ddp'), await peak('zero1'), await peak('zero2'), await peak('zero3')];
    expect(ddp).toBeGreaterThan(z1);
    expect(z1).toBeGreaterThan(z2);
    expect(z2).toBeGreaterThan(z3);
    const tp = await estimateModel(m, { scenario: 'finetune', gpus: 8, parallel: 'tp2+dp4', batch: 1, seq: 2048 });
    const dp = await estimateModel(m, { scenario: 'finetune', gpus: 8, parallel: 'ddp', batch: 1, seq: 2048 });
    expect(tp.components.weights).toBe(Math.ceil(dp.components.weights! / 2));
    expect(tp.components.activations!).toBeLessThan(dp.components.activations!);
    expect(tp.parallel).toBe('tp2+ddp(dp4)');
  });

  it('cuts activations with gradient checkpointing and counts QLoRA\'s base in NF4', async () => {
    const m = model('llama-3.1-8b');
    const plain = await estimateModel(m, { scenario: 'finetune', batch: 1, seq: 4096, peak: 'allocator' });
    const gc = await estimateModel(m, { scenario: 'finetune', batch: 1, seq: 4096, gradCheckpointing: true, peak: 'allocator' });
    expect(gc.peak_bytes).toBeLessThan(plain.peak_bytes);
    const qlora = await estimateModel(m, { scenario: 'finetune', method: 'qlora', batch: 1, seq: 4096, gradCheckpointing: true, peak: 'allocator' });
    const lora = await estimateModel(m, { scenario: 'finetune', method: 'lora', batch: 1, seq: 4096, gradCheckpointing: true, peak: 'allocator' });
    expect(qlora.components.frozen_weights! / lora.components.frozen_weights!).toBeGreaterThan(0.3);
    expect(qlora.components.frozen_weights! / lora.components.frozen_weights!).toBeLessThan(0.45);
    expect(qlora.assumptions.trainable_params).toBe(lora.assumptions.trainable_params);
  });

  it('parses parallel layouts and refuses ones that do not multiply to --gpus', () => {
    expect(parseParallel('tp2+pp2+zero1', 8)).toMatchObject({ tp: 2, pp: 2, dp: 2, dataParallel: 'zero1' });
    expect(parseParallel('zero3', 4)).toMatchObject({ dp: 4, dataParallel: 'zero3', shardGroup: 4 });
    expect(parseParallel(undefined, 1).label).toBe('single GPU');
    expect(() => parseParallel('tp3', 8)).toThrow(/does not divide/);
    expect(() => parseParallel('tp2+dp2', 8)).toThrow(/= 4 GPUs, but --gpus is 8/);
    expect(() => parseParallel('zero9', 8)).toThrow(/unknown part 'zero9'/);
  });

  it('finds the cheapest configuration that fits a device', async () => {
    const e = await estimateModel(model('llama-3.1-8b'), { scenario: 'finetune', batch: 1, seq: 2048, gpu: 'RTX4090' });
    expect(e.fits!.fits).toBe(false);
    expect(e.cheapest_fit).toBeTruthy();
    expect(e.cheapest_fit!.peak_bytes).toBeLessThanOrEqual(e.fits!.capacity_bytes);
    expect(e.cheapest_fit!.description).toMatch(/LoRA|QLoRA|8-bit/);
    const inf = await estimateModel(model('llama-3.1-8b'), { gpu: 'T4' });
    expect(inf.fits!.fits).toBe(false);
    expect(inf.cheapest_fit!.description).toMatch(/int8|nf4|int4/);
    // An architecture llama.cpp's mapping does not cover (GPT-BigCode) still gets an answer.
    const octo = await estimateModel(model('octocoder'), { gpu: 'RTX4090' });
    expect(octo.fits!.fits).toBe(false);
    expect(octo.cheapest_fit!.peak_bytes).toBeLessThanOrEqual(octo.fits!.capacity_bytes);
  });
});

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('quantkit estimate (CLI)', () => {
  it('prints one JSON object with the documented fields', () => {
    const r = cli('estimate', STORIES260K, '--json', '--batch', '2', '--seq', '256');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    for (const k of ['peak_bytes', 'components', 'params', 'scenario', 'dtype', 'batch', 'seq', 'method', 'gpus', 'parallel', 'assumptions']) expect(j, k).toHaveProperty(k);
    expect(j.params).toBe(260_032);
    expect(j.batch).toBe(2);
    expect(j.seq).toBe(256);
    expect(j.peak_bytes).toBe(Object.values(j.components as Record<string, number>).reduce((a, b) => a + b, 0));
  });

  it('reads a bare config.json through the architecture formulas, and labels GB and GiB', () => {
    const cfg = join(dir, 'phi3-config.json');
    writeFileSync(cfg, JSON.stringify(CONFIGS['phi-3-mini']));
    const r = cli('estimate', cfg, '--scenario', 'finetune', '--method', 'qlora', '--grad-checkpointing', '--gpu', 'T4');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/3,821,079,552 parameters \(config formulas\)/);
    expect(r.stdout).toMatch(/peak per GPU \(device\): [\d.]+ GB \([\d.]+ GiB\)/);
    expect(r.stdout).toMatch(/fits on T4 \(NVIDIA T4/);
  });

  it('fails with exit 3 naming the file for an architecture without formulas, exit 2 for bad flags', () => {
    const cfg = join(dir, 'rwkv.json');
    writeFileSync(cfg, JSON.stringify({ model_type: 'rwkv' }));
    const r = cli('estimate', cfg);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/rwkv\.json.*model_type 'rwkv' has no parameter formulas/);
    expect(cli('estimate', STORIES260K, '--gpus', '4', '--parallel', 'tp3').code).toBe(2);
    expect(cli('estimate', STORIES260K, '--device', 'Z80').stderr).toMatch(/unknown device 'Z80'/);
  });
});
