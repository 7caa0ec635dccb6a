/**
 * The accuracy targets of the quantization methods, measured (a benchmark, not a test: it prints
 * figures and whether each target is met).
 *
 *   npm run quality
 *
 * 1. Perplexity of the bundled models on the bundled TinyStories excerpt for each method, in the two
 *    layouts quantkit writes: GGUF (every matrix whose rows ggml can block; stories260k's 172-wide
 *    down_proj rows stay F16 there, as llama.cpp requires) and packed safetensors with every matrix
 *    quantized (embeddings included; 172-wide rows in groups of 43).
 * 2. Relative RMSE of search / IQ4_NL against round-to-nearest on both models and on Phi-3-mini-shaped
 *    synthetic rows.
 * 3. Kernel speed of the improved methods against RTN (bf16 input, 1 and 2 threads).
 */
import { join } from 'node:path';
import { Checkpoint } from '../src/checkpoint.js';
import { LlamaModel } from '../src/eval/llama.js';
import { Reference, readDocuments, tokenSequences } from '../src/eval/perplexity.js';
import { quantizeInMemory } from '../src/eval/quantized-values.js';
import { Tokenizer } from '../src/eval/tokenizer.js';
import { addon, allocateParts, type KernelSpec } from '../src/native.js';
import { type QuantizeOptions, planQuantization } from '../src/plan.js';
import { estimateColumnImportance } from '../src/quant/importance.js';
import { calibrate } from '../src/quant/calibration.js';
import { prepareQuantizer } from '../src/quant/auto.js';
import { metricsFromSums } from '../src/verify.js';
import { randomBf16 } from './random-bf16.js';

const ROOT = join(import.meta.dirname, '..');
const EVAL = join(ROOT, 'data', 'tinystories-valid-excerpt.txt');
const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');

interface Row { layout: string; method: string; bpw: number; rel: number; ppl: number; kl: number; top1: number }
const ALL_MATRICES = 'safetensors, all matrices, F16 scales';
const ALL_MATRICES_OPTIONS: Partial<QuantizeOptions> = { format: 'safetensors', scaleDtype: 'F16', bitsFor: ['*embed_tokens*=4', 'lm_head*=4'] };

/** stories260k, every matrix, GPTQ with calibration seeds 0..n-1: how much the model's own text matters. */
async function gptqSeeds(n: number): Promise<{ seed: number; ppl: number; kl: number }[]> {
  const dir = join(ROOT, 'models', 'stories260k');
  const ckpt = await Checkpoint.open(dir);
  try {
    const tok = await Tokenizer.fromFile(join(dir, 'tokenizer.json'));
    const ref = await Reference.compute(await LlamaModel.load(ckpt), tokenSequences(await readDocuments(EVAL), tok, 1, 512), 2);
    const plan = await planQuantization(ckpt, { bits: 4, groupSize: 32, mode: 'sym', ...ALL_MATRICES_OPTIONS, quantMethod: 'gptq' });
    const out = [];
    for (let seed = 0; seed < n; seed++) {
      const calibration = await calibrate(ckpt, { seed, threads: 2 });
      const q = await quantizeInMemory(ckpt, plan, { calibration, keepValues: true, threads: 2 });
      const d = await ref.compare(await LlamaModel.load(ckpt, async (t, v) => q.values.get(t.name) ?? v), 2);
      out.push({ seed, ppl: d.perplexity, kl: d.kl_mean });
    }
    return out;
  } finally {
    await ckpt.close();
  }
}

async function model(name: string): Promise<Row[]> {
  const dir = join(ROOT, 'models', name);
  const ckpt = await Checkpoint.open(dir);
  try {
    const tok = await Tokenizer.fromFile(join(dir, 'tokenizer.json'));
    const ref = await Reference.compute(await LlamaModel.load(ckpt), tokenSequences(await readDocuments(EVAL), tok, 1, 512), 2);
    console.log(`\n${name}: original perplexity ${ref.result.perplexity.toFixed(4)} (${ref.result.tokens} tokens)`);
    const importance = await estimateColumnImportance(ckpt);
    const calibration = await calibrate(ckpt, { threads: 2 }); // GPTQ: the model's own text, default settings
    const layouts: [string, Partial<QuantizeOptions>, string[]][] = [
      ['GGUF (ggml-blockable matrices)', { format: 'gguf-raw' }, ['auto', 'rtn', 'search', 'iq4nl', 'gptq', 'iq4nl-gptq']],
      [ALL_MATRICES, ALL_MATRICES_OPTIONS, ['auto', 'rtn', 'search', 'gptq']],
      ['GGUF Q4_1 (asymmetric, 5 bits/weight)', { format: 'gguf-raw', mode: 'asym' }, ['rtn', 'search', 'hqq']],
    ];
    const rows: Row[] = [];
    console.log('layout                                  method     bits/weight  rel-RMSE  perplexity  KL mean  top-1');
    for (const [layout, o, methods] of layouts)
      for (const method of methods) {
        const plan = await planQuantization(ckpt, { bits: 4, groupSize: 32, mode: 'sym', ...o, quantMethod: method as 'rtn' });
        // auto (the default) measures its candidates as quantize does (src/quant/auto.ts)
        const { quantizer } = await prepareQuantizer(ckpt, plan, { importance, calibrated: calibration, threads: 2 });
        const q = await quantizeInMemory(ckpt, plan, { quantizer, keepValues: true, threads: 2 });
        const d = await ref.compare(await LlamaModel.load(ckpt, async (t, v) => q.values.get(t.name) ?? v), 2);
        const s = q.errors.reduce((a, e) => ({ sumSqErr: a.sumSqErr + e.sums.sumSqErr, sumSqRef: a.sumSqRef + e.sums.sumSqRef, maxAbsErr: 0, count: a.count + e.sums.count }), { sumSqErr: 0, sumSqRef: 0, maxAbsErr: 0, count: 0 });
        const row = { layout, method, bpw: plan.bitsPerQuantizedWeight, rel: metricsFromSums(s).relRmse, ppl: d.perplexity, kl: d.kl_mean, top1: d.top1_agreement };
        rows.push(row);
        console.log(`${layout.padEnd(39)} ${method.padEnd(10)} ${row.bpw.toFixed(3).padStart(11)}  ${row.rel.toFixed(4).padStart(8)}  ${row.ppl.toFixed(4).padStart(10)}  ${row.kl.toFixed(4).padStart(7)}  ${(100 * row.top1).toFixed(1)}%`);
      }
    return rows;
  } finally {
    await ckpt.close();
  }
}

function synthetic(cols: number, rows = 64): Uint8Array {
  let s = 12345;
  const rnd = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const f = new Float32Array(rows * cols);
  for (let i = 0; i < f.length; i++) f[i] = 0.02 * Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd()) * (rnd() < 0.001 ? 10 + 40 * rnd() : 1);
  return new Uint8Array(f.buffer);
}

async function relRmse(spec: KernelSpec, src: Uint8Array, rows: number, cols: number): Promise<number> {
  const parts = allocateParts(spec, rows, cols);
  await addon().quantize({ spec, rows, cols, src, srcDtype: 'F32', out: parts });
  return metricsFromSums(await addon().errorStats({ spec, rows, cols, src, srcDtype: 'F32', parts })).relRmse;
}


async function speed(spec: KernelSpec, src: Uint8Array, rows: number, cols: number, threads: number, weights?: Float32Array): Promise<number> {
  const out = allocateParts(spec, rows, cols);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = process.hrtime.bigint();
    await addon().quantize({ spec, rows, cols, src, srcDtype: 'BF16', out, threads, weights });
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  times.sort((a, b) => a - b);
  return src.length / times[2]! / 1e9;
}

const stories = await model('stories260k');
const tiny = await model('tinystories-656k');

console.log('\nTargets');
for (const [name, rows, target] of [['stories260k', stories, 3.6], ['tinystories-656k', tiny, 15.9]] as const)
  for (const layout of ['GGUF (', 'safetensors']) {
    const r = rows.find((x) => x.layout.startsWith(layout) && x.method === 'auto')!;
    console.log(`default (auto) ${name} ${layout.replace(' (', '')}: perplexity ${r.ppl.toFixed(4)} at ${r.bpw.toFixed(3)} bits/weight (target <= ${target}) ${verdict(r.ppl <= target)}`);
  }
const best = (rows: Row[], layout: string) => rows.filter((r) => r.layout.startsWith(layout) && r.method !== 'rtn').sort((a, b) => a.ppl - b.ppl)[0]!;
const allMat = best(stories, 'safetensors');
const gguf = best(stories, 'GGUF (');
console.log(`stories260k perplexity <= 3.60 at 4.5 bits/weight, every matrix quantized: ${allMat.ppl.toFixed(4)} (${allMat.method}, ${allMat.bpw.toFixed(3)} bits/weight; RTN ${stories.find((r) => r.layout === allMat.layout && r.method === 'rtn')!.ppl.toFixed(4)}) ${verdict(allMat.ppl <= 3.6)}`);
const calibration = stories.find((r) => r.layout === allMat.layout && r.method === 'search')!;
console.log(`  without calibration (search): ${calibration.ppl.toFixed(4)} ${verdict(calibration.ppl <= 3.6)}`);
const seeds = await gptqSeeds(4);
console.log(`  gptq by calibration seed: ${seeds.map((x) => `seed ${x.seed} ${x.ppl.toFixed(4)} (KL ${x.kl.toFixed(4)})`).join(', ')}; ${seeds.filter((x) => x.ppl <= 3.6).length} of ${seeds.length} <= 3.60`);
console.log(`  GGUF layout (down_proj F16, as llama.cpp requires for 172-wide rows): ${gguf.ppl.toFixed(4)} (${gguf.method}; Q4_0 RTN ${stories.find((r) => r.layout === gguf.layout && r.method === 'rtn')!.ppl.toFixed(4)}) ${verdict(gguf.ppl <= 3.6)}`);
for (const [name, rows] of [['stories260k', stories], ['tinystories-656k', tiny]] as const)
  for (const layout of ['GGUF (', 'safetensors', 'GGUF Q4_1']) {
    const rtn = rows.find((r) => r.layout.startsWith(layout) && r.method === 'rtn')!;
    for (const r of rows.filter((x) => x.layout.startsWith(layout) && x.method !== 'rtn'))
      console.log(`${name} ${layout.replace(" (", "")} ${r.method}: rel-RMSE ${(r.rel / rtn.rel).toFixed(3)}x RTN (target <= 0.92) ${verdict(r.rel <= 0.92 * rtn.rel)}; KL ${(r.kl / rtn.kl).toFixed(3)}x RTN`);
  }
for (const cols of [3072, 8192]) {
  const src = synthetic(cols);
  const q40 = await relRmse({ scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16' }, src, 64, cols);
  const int4 = await relRmse({ scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'BF16' }, src, 64, cols);
  const pairs: [string, number, number][] = [
    ['IQ4_NL vs Q4_0', await relRmse({ scheme: 'iq4_nl', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' }, src, 64, cols), q40],
    ['Q4_0 search vs Q4_0', await relRmse({ scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' }, src, 64, cols), q40],
    ['int4 search vs int4', await relRmse({ scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'BF16', method: 'search' }, src, 64, cols), int4],
  ];
  for (const [label, a, b] of pairs) console.log(`Phi-3-shaped rows x${cols}: ${label}: ${(a / b).toFixed(3)}x (${a.toFixed(4)} / ${b.toFixed(4)}) ${verdict(a <= 0.92 * b)}`);
}

console.log('\nKernel speed, bf16 input 8192 x 4096, GB/s of input (median of 5)');
const rows = 8192, cols = 4096, src = randomBf16(rows * cols);
const weights = Float32Array.from({ length: cols }, (_, i) => 0.5 + ((i * 2654435761) % 1000) / 1000);
for (const [label, spec] of [
  ['Q4_0 rtn', { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16' }],
  ['Q4_0 search', { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' }],
  ['IQ4_NL', { scheme: 'iq4_nl', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' }],
  ['int4 g32 rtn', { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'BF16' }],
  ['int4 g32 search', { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'BF16', method: 'search' }],
] as [string, KernelSpec][]) {
  const one = await speed(spec, src, rows, cols, 1, spec.method === 'search' ? weights : undefined);
  const two = await speed(spec, src, rows, cols, 2, spec.method === 'search' ? weights : undefined);
  console.log(`${label.padEnd(16)} 1 thread ${one.toFixed(2)}  2 threads ${two.toFixed(2)}${spec.method === 'search' ? `  (target >= 1.4 with 2 threads: ${verdict(two >= 1.4)})` : ''}`);
}
