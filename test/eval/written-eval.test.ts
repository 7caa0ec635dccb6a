/**
 * quantize's end-of-run perplexity: measured on the written file (read back from disk, GGUF's rotary
 * row order undone), equal to the perplexity of the same quantization computed in memory; printed in
 * the summary and stored in quantization-report.json beside the original's; skipped with --no-eval,
 * and explained where it is not measured (ONNX). RTN runs only, so the file takes seconds.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { LlamaModel } from '../../src/eval/llama.js';
import { Reference, evaluationSequences } from '../../src/eval/perplexity.js';
import { quantizeInMemory } from '../../src/eval/quantized-values.js';
import { BUNDLED_EVAL_TEXT, type WrittenEvaluation } from '../../src/eval/written-eval.js';
import { planQuantization } from '../../src/plan.js';
import { quantize } from '../../src/quantize.js';
import { runCli } from '../helpers/cli.js';
import { ROOT, STORIES260K, tempDir } from '../helpers/models.js';

const dir = tempDir();

describe("quantize's end-of-run perplexity", () => {
  it('is the written GGUF file\'s (q/k rows in llama.cpp\'s order): equal to the same quantization evaluated in memory', async () => {
    const options = { bits: 4 as const, format: 'gguf' as const, quantMethod: 'rtn' as const };
    const { report } = await quantize(STORIES260K, { ...options, output: join(dir, 'gguf'), threads: 2, evalFile: true });
    const e = report.evaluation as WrittenEvaluation;
    expect(e.file).toBe(BUNDLED_EVAL_TEXT);
    const ckpt = await Checkpoint.open(STORIES260K);
    try {
      const ref = await Reference.compute(await LlamaModel.load(ckpt), await evaluationSequences(ckpt, BUNDLED_EVAL_TEXT, 512), 2);
      const q = await quantizeInMemory(ckpt, await planQuantization(ckpt, options), { keepValues: true, threads: 2 });
      const inMemory = await ref.compare(await LlamaModel.load(ckpt, async (t, v) => q.values.get(t.name) ?? v), 2);
      expect(e.original_perplexity).toBe(ref.result.perplexity);
      expect(e.tokens).toBe(ref.result.tokens);
      expect(e.perplexity).toBeCloseTo(inMemory.perplexity, 9);
      expect(e.kl_mean).toBeCloseTo(inMemory.kl_mean, 9);
      // 4-bit RTN is measurably worse than the original (docs/quality.md: 3.67 against 3.31).
      expect(e.perplexity).toBeGreaterThan(e.original_perplexity * 1.05);
    } finally {
      await ckpt.close();
    }
  }, 60_000);

  it("is the CLI's default, not the library's (library runs keep their speed unless they ask)", async () => {
    const { report } = await quantize(STORIES260K, { bits: 4, format: 'gguf', quantMethod: 'rtn', output: join(dir, 'lib-default'), threads: 2 });
    expect(report.evaluation).toEqual({ skipped: 'not asked (library option evalFile; the CLI measures it by default)' });
  }, 60_000);

  it('the CLI prints it and writes it to the report; --no-eval skips it; ONNX says why there is none', () => {
    const out = join(dir, 'st');
    const r = runCli(['quantize', '--bits', '4', '--method', 'rtn', STORIES260K, '-o', out, '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    const e = JSON.parse(readFileSync(join(out, 'quantization-report.json'), 'utf8')).evaluation as WrittenEvaluation;
    expect(e.original_perplexity).toBeCloseTo(3.3109, 4); // the bundled model's figure in docs/quality.md
    expect(e.perplexity).toBeGreaterThan(e.original_perplexity);
    expect(r.stdout).toContain(`perplexity ${e.perplexity.toFixed(4)} (original ${e.original_perplexity.toFixed(4)};`);
    expect(r.stdout).toContain('tinystories-valid-excerpt.txt');

    // --eval: another text, the same evaluator (here one document of the bundled text: fewer tokens).
    const own = join(dir, 'own.txt');
    writeFileSync(own, readFileSync(join(ROOT, 'data', 'tinystories-valid-excerpt.txt'), 'utf8').split(/^<\|endoftext\|>$/m)[0]!);
    const other = runCli(['quantize', '--bits', '4', '--method', 'rtn', '--format', 'gguf', STORIES260K, '-o', join(dir, 'own'), '--eval', own, '--json', '--threads', '2']);
    expect(other.code, other.stderr).toBe(0);
    const o = JSON.parse(other.stdout).evaluation as WrittenEvaluation;
    expect(o.file).toBe(own);
    expect(o.documents).toBe(1);
    expect(o.tokens).toBeLessThan(e.tokens);

    const skipped = runCli(['quantize', '--bits', '4', '--method', 'rtn', STORIES260K, '-o', join(dir, 'ne'), '--no-eval', '--threads', '2']);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stdout).toContain('perplexity: not measured (--no-eval)');
    expect(JSON.parse(readFileSync(join(dir, 'ne', 'quantization-report.json'), 'utf8')).evaluation).toEqual({ skipped: '--no-eval' });

    const onnx = runCli(['quantize', '--bits', '4', '--method', 'rtn', '--format', 'onnx', STORIES260K, '-o', join(dir, 'onnx'), '--threads', '2']);
    expect(onnx.code, onnx.stderr).toBe(0);
    expect(onnx.stdout).toMatch(/perplexity: not measured \(ONNX output/);
  }, 60_000);
});
