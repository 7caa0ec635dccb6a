/**
 * llama.cpp's file types through quantkit's front doors: `plan`/`--dry-run`, `estimate --dtype gguf:<TYPE>`
 * and `--scenario packed` give the same bytes from the same planner; quantize writes the types its
 * addon has kernels for with written bytes equal to the prediction, and refuses the others up front with
 * a clear error; --pure and the single-type defaults; llama.cpp's MoE rules.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { estimateModel } from '../../src/estimate/estimate.js';
import { fromCheckpoint, fromConfig } from '../../src/estimate/model.js';
import { LLAMA_CPP_FILE_TYPES, type MixTensor, llamaCppTypes } from '../../src/formats/gguf-mixes.js';
import { GgufReader } from '../../src/formats/gguf-container.js';
import { addon } from '../../src/native.js';
import { planQuantization, resolveOptions } from '../../src/plan.js';
import { quantize } from '../../src/quantize.js';
import { CLI, STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';
import { syntheticFromConfig } from '../helpers/synthetic-llama.js';

const dir = tempDir('quantkit-gguf-types-');
/** GQA 4, 16 layers, rows multiples of 256: every K-quant rule shows. */
const LLAMA = { model_type: 'llama', hidden_size: 256, intermediate_size: 768, num_hidden_layers: 16, num_attention_heads: 8, num_key_value_heads: 2, vocab_size: 512, tie_word_embeddings: false, max_position_embeddings: 512, torch_dtype: 'bfloat16' };

const typeCounts = (plan: Awaited<ReturnType<typeof planQuantization>>) => {
  const n: Record<string, number> = {};
  for (const e of plan.entries) if (e.tensor.shape.length > 1) n[e.treatment.kind === 'quantize' ? e.treatment.label : e.treatment.outDtype] = (n[e.treatment.kind === 'quantize' ? e.treatment.label : e.treatment.outDtype] ?? 0) + 1;
  return n;
};

describe('estimate --dtype gguf:<TYPE> is the plan', () => {
  for (const source of ['a config.json', 'a model directory'] as const)
    it(`prices every llama.cpp file type byte for byte, from ${source}`, async () => {
      const m = source === 'a config.json' ? fromConfig(LLAMA, 'llama/config.json') : fromCheckpoint(await Checkpoint.open(syntheticDir()), 'safetensors headers');
      try {
        // (A directory's plan reads its tokenizer each time: four file types there, all of them from the config.)
        for (const ft of source === 'a config.json' ? LLAMA_CPP_FILE_TYPES : (['Q4_K_M', 'Q2_K', 'Q6_K', 'Q8_0'] as const)) {
          const plan = await planQuantization(m.checkpoint, { bits: 4, format: 'gguf', ggufType: ft, pure: false });
          const packed = await estimateModel(m, { scenario: 'packed', dtype: `gguf:${ft}` });
          expect(packed.peak_bytes, ft).toBe(plan.outputBytes);
          expect(packed.components, ft).toEqual({ [plan.files[0]!.name]: plan.files[0]!.bytes });
          const inference = await estimateModel(m, { dtype: `gguf:${ft}`, runtime: 'llama.cpp', seq: 256 });
          expect(inference.components.weights, ft).toBe(plan.entries.reduce((s, e) => s + e.outputBytes, 0));
        }
      } finally {
        await m.checkpoint.close();
      }
    });

  it('prices architectures llama.cpp does not map with the same rules under checkpoint names (gguf-raw)', async () => {
    const gpt2 = fromConfig({ model_type: 'gpt2', n_embd: 768, n_layer: 12, n_head: 12, vocab_size: 50257, n_positions: 1024 }, 'gpt2/config.json');
    const est = await estimateModel(gpt2, { scenario: 'packed', dtype: 'gguf:Q4_K_M' });
    const plan = await planQuantization(gpt2.checkpoint, { bits: 4, format: 'gguf-raw', ggufType: 'Q4_K_M' });
    expect(est.peak_bytes).toBe(plan.outputBytes);
    const type = (n: string) => plan.entries.find((e) => e.tensor.name === n)!.treatment;
    expect(type('transformer.wte.weight')).toMatchObject({ label: 'Q6_K' }); // tied: the output head
    expect(type('transformer.h.0.attn.c_attn.weight')).toMatchObject({ label: 'Q6_K' }); // fused qkv: attn_v's rule, a more-bits layer
    expect(type('transformer.h.1.attn.c_attn.weight')).toMatchObject({ label: 'Q4_K' });
    expect(type('transformer.wpe.weight')).toMatchObject({ kind: 'keep', reason: expect.stringMatching(/llama.cpp keeps it/) });
  });
});

describe('plan and --dry-run', () => {
  it('--gguf-type Q4_K_M --dry-run prints llama.cpp\'s mix and the exact file size, the same as estimate', async () => {
    const model = syntheticDir();
    const r = spawnSync(process.execPath, [CLI, 'quantize', model, '--format', 'gguf', '--gguf-type', 'Q4_K_M', '--dry-run', '--json', '-o', join(dir, 'never')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { files: { name: string; bytes: number }[]; tensors: { format: string }[] };
    expect(j.files[0]!.name).toBe('llama-Q4_K_M.gguf');
    const formats: Record<string, number> = {};
    for (const t of j.tensors) formats[t.format] = (formats[t.format] ?? 0) + 1;
    // 16 layers: attn_v and ffn_down in Q6_K on the more-bits layers 0, 1, 4, 7, 10, 13, 14, 15, and the
    // output head; the other 97 matrices Q4_K; norms F32.
    expect(formats).toEqual({ Q6_K: 17, Q4_K: 97, F32: 33 });
    const m = fromCheckpoint(await Checkpoint.open(model), 'safetensors headers');
    try {
      expect((await estimateModel(m, { scenario: 'packed', dtype: 'gguf:Q4_K_M' })).peak_bytes).toBe(j.files[0]!.bytes);
    } finally {
      await m.checkpoint.close();
    }
    expect(spawnSync('ls', [join(dir, 'never')]).status).not.toBe(0);
  });

  it('keeps the single-type files uniform unless --no-pure, and --pure makes a mix uniform', async () => {
    const ckpt = await Checkpoint.open(STORIES260K);
    try {
      const pure = await planQuantization(ckpt, { bits: 4, format: 'gguf', ggufType: 'Q4_0' });
      const bits = await planQuantization(ckpt, { bits: 4, format: 'gguf' });
      expect(pure.outputBytes).toBe(bits.outputBytes); // the file quantkit always wrote: 245,408 bytes
      expect(typeCounts(pure)).toEqual({ Q4_0: 31, F16: 5 });
      // llama-quantize Q4_0: the tied embedding is the output head, Q6_K, whose 64-wide rows fall back to Q8_0.
      const mix = await planQuantization(ckpt, { bits: 4, format: 'gguf', ggufType: 'Q4_0', pure: false });
      expect(typeCounts(mix)).toEqual({ Q8_0: 1, Q4_0: 30, F16: 5 });
      const k = await planQuantization(ckpt, { bits: 4, format: 'gguf', ggufType: 'Q6_K', pure: true });
      expect(typeCounts(k)).toEqual({ Q8_0: 31, F16: 5 }); // no stories260k row is whole 256-weight blocks
    } finally {
      await ckpt.close();
    }
    expect(() => resolveOptions({ bits: 4, format: 'gguf', ggufType: 'mobile', pure: true })).toThrow(/--pure applies to --gguf-type with one of llama.cpp's file types/);
    expect(() => resolveOptions({ bits: 4, format: 'gguf', ggufType: 'Q4_K_M', quantMethod: 'iq4nl' })).toThrow(/use --gguf-type IQ4_NL/);
  });
});

describe('quantize', () => {
  it("writes llama-quantize's Q4_0 mix and IQ4_NL files with its existing kernels: written bytes equal the prediction", async () => {
    for (const [ggufType, quantMethod] of [['Q4_0', 'rtn'], ['IQ4_NL', 'iq4nl']] as const) {
      const { output, plan, report } = await quantize(TINYSTORIES656K, { bits: 4, format: 'gguf', ggufType, pure: false, quantMethod, output: join(dir, `656k-${ggufType}`), threads: 1 });
      expect(report.sizes.every((s) => s.predicted === s.actual)).toBe(true);
      const r = await GgufReader.open(join(output, plan.files[0]!.name));
      try {
        expect(r.file.kvs.get('general.file_type')!.value).toBe(ggufType === 'Q4_0' ? 2 : 25);
        expect(r.file.tensors.find((t) => t.name === 'token_embd.weight')!.type).toBe('Q8_0'); // Q6_K's fallback for 128-wide rows
        expect(r.file.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!.type).toBe(ggufType);
      } finally {
        await r.close();
      }
    }
  }, 60_000);

  it('refuses an encoding the addon has no kernels for before writing anything, and says plan and estimate still size it', async () => {
    let hasK = true;
    try {
      addon().layout({ spec: { scheme: 'q4_k', bits: 4, group: 256, scaleDtype: 'F16' }, cols: 256 });
    } catch {
      hasK = false;
    }
    const out = join(dir, 'k-out');
    const run = quantize(syntheticDir(), { bits: 4, format: 'gguf', ggufType: 'Q4_K_M', output: out, threads: 1 });
    if (hasK) {
      // With the K-quant kernels: written, and the bytes are the planned ones.
      const { report } = await run;
      expect(report.sizes.every((s) => s.predicted === s.actual)).toBe(true);
    } else {
      await expect(run).rejects.toMatchObject({ code: 'ERR_NATIVE', message: expect.stringMatching(/cannot write Q[46]_K .*it has no Q[46]_K kernels; `quantkit plan` and `estimate` still give its exact size/) });
      expect(spawnSync('ls', [out]).status).not.toBe(0);
    }
  }, 60_000);
});

describe("llama.cpp's MoE rules", () => {
  it('give 8-expert models Q8_0 attention values and keys and Q5_K attention output, and read ffn_down layers from the names', () => {
    const tensors: MixTensor[] = [{ name: 'output.weight', category: 'output', cols: 4096, quantizable: true }];
    for (let l = 0; l < 32; l++)
      for (const [n, c] of [['attn_v', 'attn_v'], ['attn_k', 'attn_k'], ['attn_output', 'attn_output'], ['ffn_gate_inp', 'other']] as const)
        tensors.push({ name: `blk.${l}.${n}.weight`, category: c, cols: 4096, quantizable: n !== 'ffn_gate_inp' });
    // Only layers 5 and 6 carry ffn_down: llama.cpp counts dense models' ffn_down tensors (here the 1st and
    // 2nd: both in the first eighth, Q6_K) but reads a MoE model's layer from the name (5: Q4_K, 6: Q6_K).
    for (const l of [5, 6]) tensors.push({ name: `blk.${l}.ffn_down_exps.weight`, category: 'ffn_down', cols: 14336, quantizable: true });
    const model = { arch: 'llama', layers: 32, heads: 32, kvHeads: 8 };
    const moe = llamaCppTypes('Q4_K_M', tensors, { ...model, experts: 8 });
    expect(moe.get('blk.5.attn_v.weight')!.type).toBe('Q8_0');
    expect(moe.get('blk.5.attn_k.weight')!.type).toBe('Q8_0');
    expect(moe.get('blk.5.attn_output.weight')!.type).toBe('Q5_K');
    expect([moe.get('blk.5.ffn_down_exps.weight')!.type, moe.get('blk.6.ffn_down_exps.weight')!.type]).toEqual(['Q4_K', 'Q6_K']);
    expect(moe.has('blk.0.ffn_gate_inp.weight')).toBe(false);
    const dense = llamaCppTypes('Q4_K_M', tensors, { ...model, experts: 0 });
    expect([dense.get('blk.5.ffn_down_exps.weight')!.type, dense.get('blk.6.ffn_down_exps.weight')!.type]).toEqual(['Q6_K', 'Q6_K']);
    expect(dense.get('blk.5.attn_k.weight')!.type).toBe('Q4_K');
  });
});

/** The synthetic Llama of this file, written on first use. */
let written: string | undefined;
function syntheticDir(): string {
  return (written ??= syntheticFromConfig(join(dir, 'llama'), LLAMA));
}
