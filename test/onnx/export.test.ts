/**
 * ONNX export proven by running it: both bundled models exported in every dtype, loaded by
 * onnxruntime-node (and, in transformers.test.ts, by transformers.js), against the project's reference
 * forward pass:
 *  - fp32 and fp16 greedily generate the original model's tokens from the same prompt;
 *  - q8, q4 and q4f16 greedily generate what the reference pass generates on the weights that were
 *    written (dequantized back out of the files), and q4/q8 perplexity on the bundled text (every story,
 *    BOS + 256 tokens) is within 0.5 % of the project's evaluator on those weights;
 *  - every file's size was predicted by the plan, and verify read the weights back.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { LlamaModel } from '../../src/eval/llama.js';
import { Reference, readDocuments, tokenSequences } from '../../src/eval/perplexity.js';
import { Tokenizer } from '../../src/eval/tokenizer.js';
import type { OnnxDtype } from '../../src/formats/onnx/dtypes.js';
import { OrtDecoder } from '../../src/formats/onnx/ort-session.js';
import { writtenValues } from '../../src/formats/onnx/written-values.js';
import { quantize } from '../../src/quantize.js';
import { ROOT, STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-onnx-');
const EVAL = join(ROOT, 'data', 'tinystories-valid-excerpt.txt');
const MODELS = { stories260k: STORIES260K, 'tinystories-656k': TINYSTORIES656K } as const;
const DTYPES: OnnxDtype[] = ['fp32', 'fp16', 'q8', 'q4', 'q4f16'];
const exported: Record<string, Record<string, string>> = { stories260k: {}, 'tinystories-656k': {} };

/** Greedy continuation by the reference pass (whole-sequence logits at every step). */
async function referenceGreedy(model: LlamaModel, prompt: number[], count: number): Promise<number[]> {
  const seq = [...prompt];
  const vocab = model.config.vocab;
  for (let n = 0; n < count; n++) {
    const logits = await model.logits(seq);
    const last = (seq.length - 1) * vocab;
    let best = 0;
    for (let i = 1; i < vocab; i++) if (logits[last + i]! > logits[last + best]!) best = i;
    seq.push(best);
  }
  return seq;
}

/** The reference pass on what a folder holds. */
async function writtenModel(out: string, model: string): Promise<LlamaModel> {
  const ckpt = await Checkpoint.open(model);
  try {
    const values = await writtenValues(out, ckpt);
    return await LlamaModel.load(ckpt, async (t, v) => values.get(t.name) ?? v);
  } finally {
    await ckpt.close();
  }
}

const opened: OrtDecoder[] = [];
async function ortOf(out: string): Promise<OrtDecoder> {
  const d = await OrtDecoder.open(out);
  opened.push(d);
  return d;
}
afterAll(async () => {
  for (const d of opened) await d.close();
});

beforeAll(async () => {
  for (const [name, model] of Object.entries(MODELS))
    for (const d of DTYPES) {
      const r = await quantize(model, { bits: 4, format: 'onnx', onnxDtype: d, output: join(dir, `${name}-${d}`), threads: 1 });
      exported[name]![d] = r.output;
      // The plan's sizes are what was written (quantize checks it; the report records it).
      for (const s of r.report.sizes) expect(s.actual, s.name).toBe(s.predicted);
    }
}, 60_000);

describe('ONNX export run by onnxruntime-node', () => {
  for (const [name, model] of Object.entries(MODELS)) {
    it(`${name}: fp32 and fp16 greedily generate the original model's tokens`, async () => {
      const ckpt = await Checkpoint.open(model);
      const original = await LlamaModel.load(ckpt);
      await ckpt.close();
      const tok = await Tokenizer.fromFile(join(model, 'tokenizer.json'));
      const prompt = [1, ...tok.encode('Once upon a time')];
      const want = await referenceGreedy(original, prompt, 24);
      for (const d of ['fp32', 'fp16'] as const) expect(await (await ortOf(exported[name]![d]!)).greedy(prompt, 24), d).toEqual(want);
    });

    it(`${name}: q8, q4 and q4f16 greedily generate what the reference pass generates on the written weights`, async () => {
      const tok = await Tokenizer.fromFile(join(model, 'tokenizer.json'));
      const prompt = [1, ...tok.encode('The little dog')];
      for (const d of ['q8', 'q4', 'q4f16'] as const) {
        const want = await referenceGreedy(await writtenModel(exported[name]![d]!, model), prompt, 24);
        expect(await (await ortOf(exported[name]![d]!)).greedy(prompt, 24), d).toEqual(want);
      }
    });

    it(`${name}: q4 and q8 perplexity through ONNX Runtime is within 0.5 % of quantkit's evaluator on the same weights`, async () => {
      const ckpt = await Checkpoint.open(model);
      const original = await LlamaModel.load(ckpt);
      await ckpt.close();
      const tok = await Tokenizer.fromFile(join(model, 'tokenizer.json'));
      // Every story, cut at 256 tokens to keep the test cheap (docs/onnx.md has the 512-token figures from `quantkit report`).
      const ref = await Reference.compute(original, tokenSequences(await readDocuments(EVAL), tok, 1, 256), 2);
      const rows: string[] = [];
      for (const d of ['q8', 'q4'] as const) {
        const ours = await ref.compare(await writtenModel(exported[name]![d]!, model), 2);
        const ort = await ref.compare(await ortOf(exported[name]![d]!));
        expect(Math.abs(ort.perplexity - ours.perplexity) / ours.perplexity, d).toBeLessThan(0.005);
        // The same next-token choices as quantkit's pass on these weights (both compared with the original).
        expect(Math.abs(ort.top1_agreement - ours.top1_agreement), d).toBeLessThan(0.005);
        rows.push(`${d}: ONNX Runtime ${ort.perplexity.toFixed(4)}, quantkit ${ours.perplexity.toFixed(4)} (${((100 * (ort.perplexity - ours.perplexity)) / ours.perplexity).toFixed(3)} %)`);
      }
      console.log(`${name} perplexity (original ${ref.result.perplexity.toFixed(4)}): ${rows.join('; ')}`);
    });
  }
});
