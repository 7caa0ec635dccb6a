/**
 * Fine-tuning on many GPUs and QLoRA (issue 19): frozen weights sharded under FSDP/ZeRO-3, the FSDP and
 * QLoRA terms explained, framework presets, layouts, LoRA on fused matrices.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { estimateModel } from '../../src/estimate/estimate.js';
import { architectureShapes } from '../../src/estimate/architectures.js';
import { loraParams } from '../../src/estimate/finetune.js';
import { fromConfig } from '../../src/estimate/model.js';
import { parseParallel } from '../../src/estimate/parallel.js';
import { CONFIGS } from '../../scripts/memory-cases.js';
import { CLI, tempDir } from '../helpers/models.js';

const model = (name: string) => fromConfig(CONFIGS[name]!, `${name}/config.json`, name);
const GB = 1e9;
const term = (e: Awaited<ReturnType<typeof estimateModel>>, name: string) => e.terms.find((t) => t.name === name);

describe('70B LoRA on 8 GPUs under FSDP', () => {
  const lora70 = { scenario: 'finetune', method: 'lora', framework: 'torchtune', batch: 2, seq: 2048, peak: 'allocator' } as const;

  it('shards the frozen base weights over the 8 GPUs and adds the gathered units and the root', async () => {
    const m = model('llama-3.1-70b');
    const one = await estimateModel(m, lora70);
    const fsdp = await estimateModel(m, { ...lora70, gpus: 8, parallel: 'fsdp' });
    const ddp = await estimateModel(m, { ...lora70, gpus: 8, parallel: 'ddp' });
    // 16-bit base: 141 GB on one GPU, an eighth of it per GPU under FULL_SHARD, all of it under DDP.
    expect(one.components.frozen_weights! / GB).toBeCloseTo((m.params * 2) / GB, 1);
    expect(fsdp.components.frozen_weights).toBe(Math.ceil(one.components.frozen_weights! / 8));
    expect(ddp.components.frozen_weights).toBe(one.components.frozen_weights);
    // Two decoder layers in flight (0.86e9 parameters each, bf16) and the embeddings + head kept unsharded.
    const layer = 8192 * (8192 + 1024 + 1024 + 8192) + 3 * 8192 * 28672 + 2 * 8192;
    expect(fsdp.components.fsdp_gathered_units).toBe(2 * layer * 2);
    expect(fsdp.components.fsdp_root_unsharded).toBe((2 * 128256 * 8192 + 8192) * 2);
    expect(term(fsdp, 'frozen_weights')!.why).toMatch(/divided by 8: FSDP FULL_SHARD .* frozen ones included/);
    expect(term(fsdp, 'fsdp_gathered_units')!.why).toMatch(/prefetch/);
    // torchtune's README measured 27.6 GiB for this run; the whole base (131 GiB) would be ~5x that.
    expect(fsdp.peak_bytes / 2 ** 30).toBeGreaterThan(24);
    expect(fsdp.peak_bytes / 2 ** 30).toBeLessThan(32);
    expect(ddp.peak_bytes).toBeGreaterThan(4 * fsdp.peak_bytes);
  });

  it('shards a QLoRA NF4 base and a ZeRO-3 base the same way, and HYBRID_SHARD only within its group', async () => {
    const m = model('llama-3.1-70b');
    const q1 = await estimateModel(m, { ...lora70, method: 'qlora' });
    const q8 = await estimateModel(m, { ...lora70, method: 'qlora', gpus: 8, parallel: 'fsdp' });
    expect(q8.components.frozen_weights).toBe(Math.ceil(q1.components.frozen_weights! / 8));
    const z3 = await estimateModel(m, { ...lora70, framework: 'deepspeed', gpus: 8, parallel: 'zero3' });
    expect(z3.components.frozen_weights).toBe(Math.ceil((m.params * 2) / 8));
    expect(z3.components.zero3_live_parameters).toBeGreaterThan(0);
    const hsdp = await estimateModel(m, { ...lora70, gpus: 16, parallel: 'hsdp8' });
    expect(hsdp.components.frozen_weights).toBe(Math.ceil((m.params * 2) / 8));
    // SHARD_GRAD_OP keeps every layer gathered between its forward and its backward.
    const gradOp = await estimateModel(m, { ...lora70, gpus: 8, parallel: 'fsdp-grad-op' });
    const fullShard = await estimateModel(m, { ...lora70, gpus: 8, parallel: 'fsdp' });
    expect(gradOp.components.fsdp_gathered_units).toBe(40 * fullShard.components.fsdp_gathered_units!);
  });

  it('prints the FSDP and QLoRA terms with their reasons and GB/GiB figures under --explain', () => {
    const dir = tempDir();
    const cfg = join(dir, 'llama-70b.json');
    writeFileSync(cfg, JSON.stringify(CONFIGS['llama-3.1-70b']));
    const r = spawnSync(process.execPath, [CLI, 'estimate', cfg, '--scenario', 'finetune', '--method', 'qlora', '--framework', 'hf-trainer', '--gpus', '2', '--parallel', 'fsdp', '--grad-checkpointing', '--explain'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    for (const name of ['frozen_weights', 'fsdp_gathered_units', 'fsdp_root_unsharded', 'fsdp_unit_gradient', 'dequant_scratch', 'allocator_reserve'])
      expect(r.stdout).toMatch(new RegExp(`${name} +[\\d.]+ [kMG]B \\([\\d.]+ [KMG]iB\\) \\[\\w+`));
    expect(r.stdout).toMatch(/dequant_scratch .*bitsandbytes MatMul4Bit/);
    expect(r.stdout).toMatch(/frozen_weights .*NF4 .*divided by 2: FSDP FULL_SHARD/);
    expect(r.stdout).toMatch(/settings:\n.*precision = bf16: hf-trainer:/);
  });
});

describe('QLoRA terms', () => {
  it('sizes the dequantized copy by the largest quantized linear, and by the head when Lit-GPT quantizes it', async () => {
    const m = model('llama-2-7b');
    const base = { scenario: 'finetune', method: 'qlora', batch: 1, seq: 1024, peak: 'allocator' } as const;
    const hf = await estimateModel(m, { ...base, framework: 'hf-trainer' });
    const lit = await estimateModel(m, { ...base, framework: 'litgpt' });
    expect(hf.components.dequant_scratch).toBe(2 * 11008 * 4096);
    expect(lit.components.dequant_scratch).toBe(4 * 32000 * 4096);
    expect(term(lit, 'dequant_scratch')!.why).toMatch(/fp16/);
    // prepare_model_for_kbit_training keeps embeddings, head and norms in fp32: 2 more bytes each.
    const unquantized = 2 * 32000 * 4096 + 65 * 4096;
    expect(hf.components.frozen_weights! - lit.components.frozen_weights!).toBe(2 * unquantized);
  });

  it('keeps paged optimizer states out of the peak and says why', async () => {
    const m = model('llama-2-7b');
    const o = { scenario: 'finetune', method: 'full', precision: 'bf16', batch: 1, seq: 512, peak: 'allocator' } as const;
    const paged = await estimateModel(m, { ...o, optimizer: 'paged-adamw' });
    const plain = await estimateModel(m, { ...o, optimizer: 'adamw' });
    expect(paged.components.optimizer_states_paged).toBe(8 * m.params);
    expect(term(paged, 'optimizer_states_paged')!.outside_allocator).toBe(true);
    expect(plain.peak_bytes - paged.peak_bytes).toBe(plain.components.optimizer_states);
  });
});

describe('framework presets', () => {
  const m = model('llama-3.1-8b');
  const o = { scenario: 'finetune', method: 'lora', batch: 2, seq: 2048, peak: 'allocator' } as const;

  it('set what each framework does, each overridable by its own option', async () => {
    const tt = await estimateModel(m, { ...o, framework: 'torchtune' });
    const hf = await estimateModel(m, { ...o, framework: 'hf-trainer' });
    expect(tt.settings!.gradCheckpointing!.value).toBe(true);
    expect(hf.settings!.gradCheckpointing!.value).toBe(false);
    expect(tt.components.activation_checkpoints).toBeGreaterThan(0);
    expect(hf.components.activations).toBeGreaterThan(tt.components.activation_checkpoints!);
    // torchtune: bf16 adapters and bf16 AdamW states; PEFT: fp32 adapters with fp32 states.
    expect(hf.components.adapter_weights).toBe(2 * tt.components.adapter_weights!);
    expect(hf.components.optimizer_states).toBe(2 * tt.components.optimizer_states!);
    expect(tt.settings!.loss!.value).toBe('chunked');
    expect(hf.components.logits_and_loss).toBeGreaterThan(tt.components.logits_and_loss!);
    const overridden = await estimateModel(m, { ...o, framework: 'torchtune', gradCheckpointing: false, loss: 'upcast' });
    expect(overridden.settings!.gradCheckpointing).toEqual({ value: false, why: 'set explicitly' });
    // Same activations as the Trainer's but for PEFT's fp32 dropout copies of the adapters' inputs.
    expect(overridden.components.activations).toBeGreaterThan(0);
    expect(overridden.components.activations).toBeLessThan(hf.components.activations!);
    expect(overridden.components.logits_and_loss).toBe(hf.components.logits_and_loss);
    const axolotl = await estimateModel(m, { ...o, method: 'qlora', framework: 'axolotl' });
    expect(axolotl.settings!.optimizer!.value).toBe('paged-adamw8bit');
  });

  it('Lit-GPT under FSDP: whole units get gradients, kept unsharded while accumulating', async () => {
    const lit = await estimateModel(m, { ...o, framework: 'litgpt', gpus: 2, parallel: 'fsdp', gradAccumulation: 16 });
    // Every decoder layer parameter gets a bf16 gradient, on each GPU (no_backward_sync).
    const layers = 32 * (4096 * (4096 + 1024 + 1024 + 4096) + 3 * 4096 * 14336 + 2 * 4096);
    expect(lit.components.gradients_unsharded).toBe(2 * layers);
    const synced = await estimateModel(m, { ...o, framework: 'litgpt', gpus: 2, parallel: 'fsdp', gradAccumulation: 16, accumulateUnsynced: false });
    expect(synced.components.gradients).toBe(layers);
    expect(synced.components.gradients_unsharded).toBeUndefined();
  });

  it('offloads sharded states to the CPU when asked', async () => {
    const full = { scenario: 'finetune', method: 'full', framework: 'torchtune', batch: 2, seq: 2048, gpus: 8, parallel: 'fsdp' } as const;
    const on = await estimateModel(m, { ...full, cpuOffload: true });
    const off = await estimateModel(m, full);
    expect(off.components.weights).toBeGreaterThan(0);
    expect(on.components.weights ?? 0).toBe(0);
    expect(on.components.optimizer_states ?? 0).toBe(0);
    expect(on.components.fsdp_gathered_units).toBe(off.components.fsdp_gathered_units);
  });

  it('refuses unknown frameworks and optimizers with the allowed names', async () => {
    await expect(estimateModel(m, { ...o, framework: 'keras' as never })).rejects.toThrow(/--framework must be one of torchtune, litgpt, hf-trainer, deepspeed, axolotl/);
    await expect(estimateModel(m, { ...o, optimizer: 'lion' as never })).rejects.toThrow(/--optimizer must be one of/);
  });
});

describe('layouts and LoRA shapes', () => {
  it('parses FSDP strategies, hybrid shard groups and model parallelism', () => {
    expect(parseParallel('fsdp', 4)).toMatchObject({ dp: 4, dataParallel: 'fsdp', shardGroup: 4 });
    expect(parseParallel('shard-grad-op', 4)).toMatchObject({ dataParallel: 'fsdp-grad-op' });
    expect(parseParallel('hsdp8', 32)).toMatchObject({ dataParallel: 'hsdp', dp: 32, shardGroup: 8, label: 'hsdp(dp32, shard 8)' });
    expect(parseParallel('tp8+fsdp', 64)).toMatchObject({ tp: 8, dp: 8, shardGroup: 8 });
    expect(parseParallel('ddp', 4).shardGroup).toBe(1);
    expect(() => parseParallel('hsdp3', 8)).toThrow(/hsdp3 does not divide/);
  });

  it('counts LoRA on fused qkv matrices as Lit-GPT prints it', () => {
    const count = (name: string, targets: string[]) => {
      const { dims, tensors } = architectureShapes(CONFIGS[name]!);
      return loraParams(tensors, 8, targets, dims);
    };
    // Lit-GPT's resource tables print these trainable counts for r=8 on query and value.
    expect(count('phi-1.5', ['q_proj', 'v_proj'])).toBe(1_572_864);
    expect(count('stablelm-alpha-3b', ['q_proj', 'v_proj'])).toBe(2_097_152);
    expect(count('llama-2-13b', ['q_proj', 'v_proj'])).toBe(6_553_600);
    // Phi-3 stores q, k, v in one qkv_proj; naming the fused module adapts it whole.
    expect(count('phi-3-mini', ['q_proj', 'v_proj'])).toBe(32 * 2 * 8 * (3072 + 3072));
    expect(count('phi-3-mini', ['qkv_proj'])).toBe(32 * 8 * (3072 + 3 * 3072));
  });

  it('reproduces phi-1.5\'s 1,418,270,720 parameters from its config', () => {
    const { tensors } = architectureShapes(CONFIGS['phi-1.5']!);
    expect(tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0)).toBe(1_418_270_720);
  });
});
