/**
 * The scale search and IQ4_NL against round-to-nearest: lower weight error on the bundled models and on
 * Phi-3-mini-shaped synthetic rows, lower divergence from the original model, the same layouts.
 */
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { LlamaModel } from '../../src/eval/llama.js';
import { Reference, readDocuments, tokenSequences } from '../../src/eval/perplexity.js';
import { quantizeInMemory } from '../../src/eval/quantized-values.js';
import { Tokenizer } from '../../src/eval/tokenizer.js';
import { addon, allocateParts, type KernelSpec } from '../../src/native.js';
import { type QuantMethod, planQuantization } from '../../src/plan.js';
import { estimateColumnImportance } from '../../src/quant/importance.js';
import { metricsFromSums } from '../../src/verify.js';
import { join } from 'node:path';
import { ROOT, STORIES260K, TINYSTORIES656K } from '../helpers/models.js';

const EVAL = join(ROOT, 'data', 'tinystories-valid-excerpt.txt');

function relRmse(errors: { sums: { sumSqErr: number; sumSqRef: number; maxAbsErr: number; count: number } }[]): number {
  const t = errors.reduce((a, e) => ({ sumSqErr: a.sumSqErr + e.sums.sumSqErr, sumSqRef: a.sumSqRef + e.sums.sumSqRef, maxAbsErr: 0, count: a.count + e.sums.count }), { sumSqErr: 0, sumSqRef: 0, maxAbsErr: 0, count: 0 });
  return metricsFromSums(t).relRmse;
}

describe('column importance from the weights alone', () => {
  it('weights every q/k/v, gate/up and the output head of a Llama model, by norm gain and residual scale', async () => {
    const ckpt = await Checkpoint.open(STORIES260K);
    try {
      const imp = await estimateColumnImportance(ckpt);
      const names = [...imp.keys()].sort();
      expect(names).toContain('model.embed_tokens.weight'); // the tied output head
      for (let l = 0; l < 5; l++)
        for (const n of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'mlp.gate_proj', 'mlp.up_proj']) expect(names).toContain(`model.layers.${l}.${n}.weight`);
      expect(names.some((n) => /o_proj|down_proj/.test(n))).toBe(false);
      for (const w of imp.values()) {
        expect(w).toHaveLength(64);
        expect(w.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
        const mean = w.reduce((a, b) => a + b, 0) / w.length;
        expect(Math.max(...w) / mean).toBeGreaterThan(1.2); // not flat: it carries information
      }
    } finally {
      await ckpt.close();
    }
  });
});

describe('search and IQ4_NL lose less than round-to-nearest', () => {
  for (const [name, dir] of [['stories260k', STORIES260K], ['tinystories-656k', TINYSTORIES656K]] as const)
    it(`${name}: weight error and divergence from the original, every matrix ggml can block`, async () => {
      const ckpt = await Checkpoint.open(dir);
      try {
        const importance = await estimateColumnImportance(ckpt);
        const tok = await Tokenizer.fromFile(join(dir, 'tokenizer.json'));
        const ref = await Reference.compute(await LlamaModel.load(ckpt), tokenSequences(await readDocuments(EVAL), tok, 1, 512), 2);
        const r: Record<string, { rel: number; kl: number; top1: number; bpw: number }> = {};
        for (const method of ['rtn', 'search', 'iq4nl'] as QuantMethod[]) {
          const plan = await planQuantization(ckpt, { bits: 4, format: 'gguf-raw', quantMethod: method });
          const q = await quantizeInMemory(ckpt, plan, { importance, keepValues: true, threads: 2 });
          const d = await ref.compare(await LlamaModel.load(ckpt, async (t, v) => q.values.get(t.name) ?? v), 2);
          r[method] = { rel: relRmse(q.errors), kl: d.kl_mean, top1: d.top1_agreement, bpw: plan.bitsPerQuantizedWeight };
        }
        console.log(`${name}: ` + Object.entries(r).map(([m, v]) => `${m} rel-RMSE ${v.rel.toFixed(4)} KL ${v.kl.toFixed(4)} top-1 ${(100 * v.top1).toFixed(1)}%`).join('; '));
        for (const v of Object.values(r)) expect(v.bpw).toBe(4.5); // same size: the same blocks
        expect(r.iq4nl!.rel).toBeLessThanOrEqual(0.92 * r.rtn!.rel);
        expect(r.search!.rel).toBeLessThan(r.rtn!.rel);
        expect(r.iq4nl!.kl).toBeLessThan(0.85 * r.rtn!.kl);
        expect(r.search!.kl).toBeLessThan(r.rtn!.kl);
        expect(r.iq4nl!.top1).toBeGreaterThan(r.rtn!.top1);
      } finally {
        await ckpt.close();
      }
    }, 120_000);

  it('on Phi-3-mini-shaped rows (Gaussian with 0.1% outliers, no importance): IQ4_NL, int4 search and Q4_1 search at <= 0.92x RTN', async () => {
    let s = 12345;
    const rnd = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
    for (const cols of [3072, 8192]) {
      const rows = 32;
      const f = new Float32Array(rows * cols);
      for (let i = 0; i < f.length; i++) f[i] = 0.02 * gauss() * (rnd() < 0.001 ? 10 + 40 * rnd() : 1);
      const src = new Uint8Array(f.buffer);
      const rel = async (spec: KernelSpec) => {
        const parts = allocateParts(spec, rows, cols);
        await addon().quantize({ spec, rows, cols, src, srcDtype: 'F32', out: parts });
        return metricsFromSums(await addon().errorStats({ spec, rows, cols, src, srcDtype: 'F32', parts })).relRmse;
      };
      const q40 = await rel({ scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16' });
      expect(await rel({ scheme: 'iq4_nl', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' })).toBeLessThanOrEqual(0.92 * q40);
      expect(await rel({ scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' })).toBeLessThan(q40);
      const int4 = await rel({ scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'BF16' });
      expect(await rel({ scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'BF16', method: 'search' })).toBeLessThanOrEqual(0.92 * int4);
      const q41 = await rel({ scheme: 'q4_1', bits: 4, group: 32, scaleDtype: 'F16' });
      expect(await rel({ scheme: 'q4_1', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' })).toBeLessThanOrEqual(0.92 * q41);
      const asym = await rel({ scheme: 'int_asym', bits: 4, group: 128, scaleDtype: 'BF16' });
      expect(await rel({ scheme: 'int_asym', bits: 4, group: 128, scaleDtype: 'BF16', method: 'search' })).toBeLessThan(asym);
    }
  });

  it('HQQ (Q4_1): blocks with an outlier fit the other 31 values better than RTN; only Q4_1 takes it', async () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const rows = 64, cols = 32;
    const f = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < cols; j++) f[r * cols + j] = rnd() - 0.5;
      f[r * cols + (r % cols)] = 4 + 4 * rnd(); // one outlier per block stretches RTN's range
    }
    const src = new Uint8Array(f.buffer);
    const spec: KernelSpec = { scheme: 'q4_1', bits: 4, group: 32, scaleDtype: 'F16' };
    const restError = async (s: KernelSpec) => {
      const parts = allocateParts(s, rows, cols);
      await addon().quantize({ spec: s, rows, cols, src, srcDtype: 'F32', out: parts });
      const y = new Float32Array(rows * cols);
      await addon().dequantize({ spec: s, rows, cols, parts, out: y });
      let e = 0;
      for (let i = 0; i < f.length; i++) if (i % cols !== Math.floor(i / cols) % cols) e += Math.abs(y[i]! - f[i]!);
      return { e, bytes: Buffer.from(parts.data) };
    };
    const rtn = await restError(spec);
    const hqq = await restError({ ...spec, method: 'hqq' });
    expect(hqq.e).toBeLessThan(0.95 * rtn.e); // measured 0.92x
    expect(addon().layout({ spec: { scheme: 'int_asym', bits: 4, group: 32, scaleDtype: 'BF16', method: 'hqq' }, cols: 64 }).error).toMatch(/only Q4_1 blocks store/);
  });

  it('the kernels refuse weights of the wrong length, negative weights, and weights for rtn', async () => {
    const src = new Uint8Array(64 * 4);
    const spec: KernelSpec = { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' };
    const out = allocateParts(spec, 1, 64);
    // IQ4_NL's rtn is llama.cpp's quantize_iq4_nl without an importance matrix (test/native/ggml-identity.test.ts)
    expect(addon().layout({ spec: { ...spec, scheme: 'iq4_nl', method: 'rtn' }, cols: 64 }).error).toBeNull();
    expect(() => addon().quantize({ spec, rows: 1, cols: 64, src, srcDtype: 'F32', out, weights: new Float32Array(63) })).toThrow(/one value per column \(64\)/);
    expect(() => addon().quantize({ spec, rows: 1, cols: 64, src, srcDtype: 'F32', out, weights: new Float32Array(64).fill(-1) })).toThrow(/weights\[0\] must be finite and non-negative/);
    expect(() => addon().quantize({ spec: { ...spec, method: 'rtn' }, rows: 1, cols: 64, src, srcDtype: 'F32', out, weights: new Float32Array(64) })).toThrow(/method 'search' or 'imatrix' only/);
    expect(() => addon().quantize({ spec: { ...spec, method: 'best' as never }, rows: 1, cols: 64, src, srcDtype: 'F32', out })).toThrow(/rtn, search, gptq, hqq or imatrix/);
  });
});
