/**
 * GPTQ with self-generated calibration: the KV-cache decoder against the full forward pass, the input
 * statistics against a direct computation, the native GPTQ against the search it extends, and what it
 * buys at the model level on the bundled models.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { toFloat32 } from '../../src/convert.js';
import { LlamaModel } from '../../src/eval/llama.js';
import { Reference, readDocuments, tokenSequences } from '../../src/eval/perplexity.js';
import { quantizeInMemory } from '../../src/eval/quantized-values.js';
import { addon, allocateParts, type KernelSpec } from '../../src/native.js';
import { type QuantMethod, planQuantization } from '../../src/plan.js';
import { calibrate } from '../../src/quant/calibration.js';
import { estimateColumnImportance } from '../../src/quant/importance.js';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { ROOT, STORIES260K, TINYSTORIES656K, openLlama, tempDir } from '../helpers/models.js';

const EVAL = join(ROOT, 'data', 'tinystories-valid-excerpt.txt');

function argmaxRow(logits: Float32Array, row: number, vocab: number): number {
  let best = 0;
  for (let v = 1; v < vocab; v++) if (logits[row * vocab + v]! > logits[row * vocab + best]!) best = v;
  return best;
}

/** A tensor of the bundled model as bytes and f32 values. */
async function tensor(dir: string, name: string) {
  const ckpt = await Checkpoint.open(dir);
  try {
    const t = ckpt.tensors.find((x) => x.name === name)!;
    const raw = await ckpt.read(t);
    return { raw, dtype: t.dtype as 'BF16' | 'F32', rows: t.shape[0]!, cols: t.shape[1]!, values: toFloat32(raw, t.dtype) };
  } finally {
    await ckpt.close();
  }
}

async function dequantized(spec: KernelSpec, parts: ReturnType<typeof allocateParts>, rows: number, cols: number): Promise<Float32Array> {
  const out = new Float32Array(rows * cols);
  await addon().dequantize({ spec, rows, cols, parts, out });
  return out;
}

/** tr(D H D^T) for D = a - b (rows x cols) and H (cols x cols): the layer output's squared error summed over the calibration tokens. */
function outputError(a: Float32Array, b: Float32Array, H: Float32Array, rows: number, cols: number): number {
  let s = 0;
  const d = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) d[j] = a[r * cols + j]! - b[r * cols + j]!;
    for (let i = 0; i < cols; i++) {
      let t = 0;
      for (let j = 0; j < cols; j++) t += H[i * cols + j]! * d[j]!;
      s += d[i]! * t;
    }
  }
  return s;
}

describe('text the model writes itself', () => {
  it('greedy decoding with the KV cache equals the argmax of the full forward pass, token for token', async () => {
    const { model } = await openLlama(STORIES260K);
    const vocab = model.config.vocab;
    const seq = await model.generate({ first: 1, count: 1, length: 48, seed: 0, temperature: 0 });
    const logits = await model.logits([...seq]);
    for (let t = 1; t < seq.length; t++) expect(seq[t], `position ${t}`).toBe(argmaxRow(logits, t - 1, vocab));
  });

  it('sampling is seeded, independent of threads, and follows the model (low perplexity on its own text)', async () => {
    const { model, tok } = await openLlama(STORIES260K);
    const a = await model.generate({ first: 1, count: 4, length: 64, seed: 7, temperature: 1, threads: 1 });
    const b = await model.generate({ first: 1, count: 4, length: 64, seed: 7, temperature: 1, threads: 2 });
    const c = await model.generate({ first: 1, count: 4, length: 64, seed: 8, temperature: 1 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a.every((v) => v >= 0 && v < model.config.vocab)).toBe(true);
    for (let s = 0; s < 4; s++) expect(a[s * 64]).toBe(1);
    // Uniform random ids would score ~512 (the vocabulary); the model's own samples score like its text.
    const seqs = Array.from({ length: 4 }, (_, s) => [...a.subarray(s * 64, (s + 1) * 64)]);
    const own = await Reference.compute(model, seqs, 2);
    expect(own.result.perplexity).toBeLessThan(8);
    expect(tok.decode(seqs[0]!.slice(1))).toMatch(/[a-z]+ [a-z]+/);
  });

  it("layer 0's attention-input statistics equal sum of x x^T over RMSNorm(embedding) * gain", async () => {
    const { model } = await openLlama(STORIES260K);
    const d = model.config.hidden;
    const tokens = await model.generate({ first: 1, count: 3, length: 20, seed: 1, temperature: 1 });
    const stats = await model.inputStats(tokens, 20, 2);
    const E = (await tensor(STORIES260K, 'model.embed_tokens.weight')).values;
    const ckpt = await Checkpoint.open(STORIES260K);
    const g = toFloat32(await ckpt.read(ckpt.tensors.find((t) => t.name === 'model.layers.0.input_layernorm.weight')!), 'BF16');
    await ckpt.close();
    const want = new Float64Array(d * d);
    for (const id of tokens) {
      const x = E.subarray(id * d, (id + 1) * d);
      let ms = 0;
      for (const v of x) ms += v * v;
      const r = 1 / Math.sqrt(ms / d + 1e-5);
      const h = Array.from(x, (v, i) => v * r * g[i]!);
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) want[i * d + j]! += h[i]! * h[j]!;
    }
    let maxRel = 0;
    for (let i = 0; i < d * d; i++) maxRel = Math.max(maxRel, Math.abs(stats.attnIn[i]! - want[i]!) / (Math.abs(want[i]!) + 1e-3));
    expect(maxRel).toBeLessThan(1e-4);
    for (const a of [stats.attnIn, stats.oIn, stats.mlpIn, stats.downIn, stats.final]) expect(a.every(Number.isFinite)).toBe(true);
  });
});

describe('calibration limits', () => {
  it('refuses, before loading anything, a model whose f32 weights and statistics exceed the memory', async () => {
    const dir = join(tempDir('quantkit-gptq-'), 'wide');
    cpSync(STORIES260K, dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    cfg.intermediate_size = Math.ceil(Math.sqrt(totalmem() / 4 / cfg.num_hidden_layers)) + 1; // down_proj statistics alone exceed it
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    const ckpt = await Checkpoint.open(dir);
    try {
      await expect(calibrate(ckpt)).rejects.toThrow(/holds the model in f32 and every layer's input statistics: .* GB .*more than this machine's/);
    } finally {
      await ckpt.close();
    }
    const ok = await Checkpoint.open(STORIES260K);
    await expect(calibrate(ok, { samples: 0 })).rejects.toThrow(/--calibration-samples must be an integer from 1/);
    await ok.close();
  });
});

describe('native GPTQ', () => {
  const specs: KernelSpec[] = [
    { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16' },
    { scheme: 'iq4_nl', bits: 4, group: 32, scaleDtype: 'F16' },
    { scheme: 'q8_0', bits: 8, group: 32, scaleDtype: 'F16' },
    { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'BF16' },
    { scheme: 'int_sym', bits: 8, group: 64, scaleDtype: 'F32' },
    { scheme: 'int_asym', bits: 4, group: 32, scaleDtype: 'F16' },
  ];

  it('with an identity Hessian there is no error to feed back: the bytes of the plain search', async () => {
    const t = await tensor(STORIES260K, 'model.layers.1.mlp.gate_proj.weight');
    const identity = new Float32Array(t.cols * t.cols);
    for (let j = 0; j < t.cols; j++) identity[j * t.cols + j] = 1;
    const factor = new Float64Array(t.cols * t.cols);
    await addon().gptqFactor({ hessian: identity, cols: t.cols, damp: 0.1, out: factor });
    for (const base of specs) {
      const search = allocateParts({ ...base, method: 'search' }, t.rows, t.cols);
      await addon().quantize({ spec: { ...base, method: 'search' }, rows: t.rows, cols: t.cols, src: t.raw, srcDtype: t.dtype, out: search });
      const gptq = allocateParts({ ...base, method: 'gptq' }, t.rows, t.cols);
      await addon().gptqQuantize({ spec: { ...base, method: 'gptq' }, rows: t.rows, cols: t.cols, src: t.raw, srcDtype: t.dtype, out: gptq, factor });
      expect(Buffer.from(gptq.data).equals(Buffer.from(search.data)), base.scheme).toBe(true);
      if (search.scales) expect(Buffer.from(gptq.scales!).equals(Buffer.from(search.scales))).toBe(true);
      if (search.zeros) expect(Buffer.from(gptq.zeros!).equals(Buffer.from(search.zeros))).toBe(true);
    }
  });

  it("lowers the layer output's error on the calibration statistics, the same bytes for any thread count", async () => {
    const ckpt = await Checkpoint.open(STORIES260K);
    const cal = await calibrate(ckpt, { samples: 8, length: 64, threads: 2 });
    await ckpt.close();
    for (const name of ['model.layers.2.mlp.up_proj.weight', 'model.layers.3.self_attn.q_proj.weight', 'model.layers.1.mlp.down_proj.weight']) {
      const t = await tensor(STORIES260K, name);
      const H = cal.hessians.get(name)!;
      expect(H).toHaveLength(t.cols * t.cols);
      const factor = new Float64Array(t.cols * t.cols);
      await addon().gptqFactor({ hessian: H, cols: t.cols, damp: 0.1, out: factor });
      const diag = Float32Array.from({ length: t.cols }, (_, j) => H[j * t.cols + j]!);
      const group = t.cols % 32 === 0 ? 32 : 43;
      // compressed-tensors' symmetric groups, and its asymmetric ones (zero points: auto's default there)
      for (const scheme of ['int_sym', 'int_asym'] as const) {
        const base: KernelSpec = { scheme, bits: 4, group, scaleDtype: 'F16' };
        const search = allocateParts(base, t.rows, t.cols);
        await addon().quantize({ spec: { ...base, method: 'search' }, rows: t.rows, cols: t.cols, src: t.raw, srcDtype: t.dtype, out: search, weights: diag });
        const one = allocateParts(base, t.rows, t.cols);
        const two = allocateParts(base, t.rows, t.cols);
        await addon().gptqQuantize({ spec: { ...base, method: 'gptq' }, rows: t.rows, cols: t.cols, src: t.raw, srcDtype: t.dtype, out: one, factor, weights: diag, threads: 1 });
        await addon().gptqQuantize({ spec: { ...base, method: 'gptq' }, rows: t.rows, cols: t.cols, src: t.raw, srcDtype: t.dtype, out: two, factor, weights: diag, threads: 2 });
        expect(Buffer.from(one.data).equals(Buffer.from(two.data))).toBe(true);
        const eSearch = outputError(await dequantized(base, search, t.rows, t.cols), t.values, H, t.rows, t.cols);
        const eGptq = outputError(await dequantized(base, one, t.rows, t.cols), t.values, H, t.rows, t.cols);
        console.log(`${name} ${scheme}: output error GPTQ / search = ${(eGptq / eSearch).toFixed(3)}`);
        expect(eGptq).toBeLessThan(0.8 * eSearch);
      }
    }
  });

  it('the factor U is upper triangular with U^T U = (H + damp * mean(diag H) * I)^-1, the same for any thread count', async () => {
    const ckpt = await Checkpoint.open(STORIES260K);
    const cal = await calibrate(ckpt, { samples: 4, length: 32, threads: 2 });
    await ckpt.close();
    for (const name of ['model.layers.0.mlp.gate_proj.weight', 'model.layers.4.mlp.down_proj.weight']) {
      const H = cal.hessians.get(name)!;
      const n = Math.round(Math.sqrt(H.length));
      const U = new Float64Array(n * n), U2 = new Float64Array(n * n);
      await addon().gptqFactor({ hessian: H, cols: n, damp: 0.1, out: U, threads: 1 });
      await addon().gptqFactor({ hessian: H, cols: n, damp: 0.1, out: U2, threads: 2 });
      expect(U).toEqual(U2);
      let mean = 0;
      for (let j = 0; j < n; j++) mean += H[j * n + j]! / n;
      let worst = 0;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          if (j < i) expect(U[i * n + j]).toBe(0);
          // (H_damped * U^T U)[i][j]
          let s = 0;
          for (let k = 0; k < n; k++) {
            const h = (H[i * n + k]! + H[k * n + i]!) / 2 + (i === k ? 0.1 * mean : 0);
            let p = 0;
            for (let m = 0; m <= Math.min(k, j); m++) p += U[m * n + k]! * U[m * n + j]!;
            s += h * p;
          }
          worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
        }
      expect(worst).toBeLessThan(1e-6);
    }
  });

  it('refuses bad factors, Hessians and specs with clear errors', async () => {
    const cols = 64;
    const src = new Uint8Array(cols * 4);
    const spec: KernelSpec = { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16', method: 'gptq' };
    const out = allocateParts(spec, 1, cols);
    const good = new Float64Array(cols * cols);
    for (let j = 0; j < cols; j++) good[j * cols + j] = 1;
    expect(() => addon().gptqQuantize({ spec, rows: 1, cols, src, srcDtype: 'F32', out, factor: new Float64Array(10) })).toThrow(/factor has 10 values, expected 4096/);
    const nan = good.slice();
    nan[5] = NaN;
    expect(() => addon().gptqQuantize({ spec, rows: 1, cols, src, srcDtype: 'F32', out, factor: nan })).toThrow(/factor holds NaN or Inf/);
    const zero = good.slice();
    zero[0] = 0;
    expect(() => addon().gptqQuantize({ spec, rows: 1, cols, src, srcDtype: 'F32', out, factor: zero })).toThrow(/factor\[0, 0\] must be positive/);
    expect(() => addon().gptqQuantize({ spec: { ...spec, method: 'search' }, rows: 1, cols, src, srcDtype: 'F32', out, factor: good })).toThrow(/needs spec.method 'gptq'/);
    expect(() => addon().gptqQuantize({ spec: { ...spec, scheme: 'q4_1' }, rows: 1, cols, src, srcDtype: 'F32', out, factor: good })).toThrow(/not q4_1/);
    expect(() => addon().quantize({ spec, rows: 1, cols, src, srcDtype: 'F32', out })).toThrow(/runs through gptqQuantize/);
    const H = new Float32Array(cols * cols);
    expect(() => addon().gptqFactor({ hessian: H, cols: 63, damp: 0.1, out: good })).toThrow(/cols \* cols values/);
    H[0] = NaN;
    await expect(addon().gptqFactor({ hessian: H, cols, damp: 0.1, out: good })).rejects.toThrow(/diagonal must be finite/);
    // symmetric and indefinite: [[1, 2], [2, 1]] in the corner, no damping
    const bad = new Float32Array(cols * cols);
    for (let j = 0; j < cols; j++) bad[j * cols + j] = 1;
    bad[1] = bad[cols] = 2;
    await expect(addon().gptqFactor({ hessian: bad, cols, damp: 0, out: good })).rejects.toThrow(/not positive definite/);
  });
});

describe('GPTQ at the model level', () => {
  for (const [name, dir] of [['stories260k', STORIES260K], ['tinystories-656k', TINYSTORIES656K]] as const)
    it(`${name}: lower divergence than the search, every matrix in packed int4 and in GGUF`, async () => {
      const ckpt = await Checkpoint.open(dir);
      try {
        const { tok } = await openLlama(dir);
        const ref = await Reference.compute(await LlamaModel.load(ckpt), tokenSequences(await readDocuments(EVAL), tok, 1, 512), 2);
        const importance = await estimateColumnImportance(ckpt);
        const calibration = await calibrate(ckpt, { threads: 2 });
        expect(calibration.tokens).toHaveLength(64 * 256);
        const kl = async (method: QuantMethod, o: object) => {
          const plan = await planQuantization(ckpt, { bits: 4, groupSize: 32, quantMethod: method, ...o });
          const q = await quantizeInMemory(ckpt, plan, { importance, calibration, keepValues: true, threads: 2 });
          return { plan, d: await ref.compare(await LlamaModel.load(ckpt, async (t, v) => q.values.get(t.name) ?? v), 2) };
        };
        const all = { format: 'safetensors', scaleDtype: 'F16', bitsFor: ['*embed_tokens*=4', 'lm_head*=4'] };
        const st = { search: await kl('search', all), gptq: await kl('gptq', all) };
        const gguf = { search: await kl('search', { format: 'gguf-raw' }), gptq: await kl('gptq', { format: 'gguf-raw' }), iq4nl: await kl('iq4nl', { format: 'gguf-raw' }), iq4nlGptq: await kl('iq4nl-gptq', { format: 'gguf-raw' }) };
        console.log(`${name}: KL packed int4 search ${st.search.d.kl_mean.toFixed(4)} gptq ${st.gptq.d.kl_mean.toFixed(4)}; GGUF Q4_0 search ${gguf.search.d.kl_mean.toFixed(4)} gptq ${gguf.gptq.d.kl_mean.toFixed(4)}; IQ4_NL ${gguf.iq4nl.d.kl_mean.toFixed(4)} with gptq ${gguf.iq4nlGptq.d.kl_mean.toFixed(4)}`);
        // The same layouts and sizes as the search, every matrix quantized in the packed file.
        expect(st.gptq.plan.outputBytes).toBe(st.search.plan.outputBytes);
        expect(gguf.gptq.plan.outputBytes).toBe(gguf.search.plan.outputBytes);
        expect(st.gptq.plan.entries.filter((e) => e.treatment.kind === 'quantize').map((e) => e.treatment.kind === 'quantize' && e.treatment.label)).toContain('int4 g32 sym gptq');
        expect(st.gptq.d.kl_mean).toBeLessThan(0.85 * st.search.d.kl_mean);
        expect(gguf.gptq.d.kl_mean).toBeLessThan(0.9 * gguf.search.d.kl_mean);
        expect(gguf.iq4nlGptq.d.kl_mean).toBeLessThan(0.9 * gguf.iq4nl.d.kl_mean);
        expect(st.gptq.d.top1_agreement).toBeGreaterThan(st.search.d.top1_agreement);
      } finally {
        await ckpt.close();
      }
    }, 180_000);
});
