/**
 * Issue 9's runtime check without a GPU: quantkit's prediction of what llama.cpp allocates for the GGUF
 * files quantkit writes (model buffer, KV cache, output and compute buffers) against what llama.cpp
 * reports when it loads them (node-llama-cpp's model.size and llama.cpp's load log), and against
 * node-llama-cpp's own estimator (GgufInsights), the Node anchor to beat.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { estimateLocal } from '../../src/estimate/estimate.js';
import { llamaCppMemory } from '../../src/estimate/llamacpp-runtime.js';
import { fromCheckpoint } from '../../src/estimate/model.js';
import { quantize } from '../../src/quantize.js';
import { ROOT, STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-llama-mem-');
const RUNNER = join(ROOT, 'test', 'helpers', 'llama-run.mjs');
const MiB = 2 ** 20;

function memory(file: string, args: object): Promise<any> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [RUNNER, 'memory', file, JSON.stringify(args)], { cwd: ROOT });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? done(JSON.parse(out.trim().split('\n').pop()!)) : fail(new Error(err.slice(-2000)))));
  });
}

describe('llama.cpp memory of quantkit GGUF files: predicted vs reported', () => {
  for (const [name, model] of [['stories260k', STORIES260K], ['tinystories-656k', TINYSTORIES656K]] as const)
    for (const type of ['F16', 'Q4_0'] as const)
      it(`${name} ${type}`, async () => {
        const { output, plan } = await quantize(model, { bits: 4, format: 'gguf', ggufType: type, output: join(dir, `${name}-${type}`), threads: 1 });
        const ckpt = await Checkpoint.open(model);
        const dims = fromCheckpoint(ckpt, 'safetensors headers').dims!;
        await ckpt.close();
        const tensorBytes = plan.entries.reduce((s, e) => s + e.outputBytes, 0);
        const rows: string[] = [];
        for (const [contextSize, batchSize] of [[512, 512], [256, 128]] as const) {
          const got = await memory(join(output, plan.files[0]!.name), { contextSize, batchSize });
          const want = llamaCppMemory(dims, tensorBytes, { contextSize, batchSize });
          // `quantkit estimate --runtime llama.cpp` says the same, from the same planner.
          const est = await estimateLocal(model, { bits: 4, format: 'gguf', ggufType: type, runtime: 'llama.cpp', seq: contextSize, ubatch: batchSize });
          expect(est.components).toEqual({ weights: want.model, kv_cache: want.kv_cache, output_buffer: want.output, compute_buffer: want.compute });
          expect(got.modelSize).toBe(want.model); // exact: the planner's tensor bytes
          // llama.cpp logs MiB with two decimals: equal within that rounding.
          expect(Math.abs(got.logged.kv_cache - want.kv_cache)).toBeLessThanOrEqual(0.0051 * MiB);
          expect(Math.abs(got.logged.output - want.output)).toBeLessThanOrEqual(0.0051 * MiB);
          expect(Math.abs(got.logged.compute - want.compute) / got.logged.compute).toBeLessThan(0.2);
          const actual = got.logged.kv_cache + got.logged.output + got.logged.compute;
          const ours = (want.kv_cache + want.output + want.compute - actual) / actual;
          const theirs = (got.insights.context - actual) / actual;
          expect(Math.abs(ours)).toBeLessThan(Math.abs(theirs));
          rows.push(`ctx ${contextSize}/ubatch ${batchSize}: context memory ${(actual / MiB).toFixed(2)} MiB, quantkit ${(100 * ours).toFixed(1)}%, GgufInsights ${(100 * theirs).toFixed(1)}%`);
        }
        console.log(`${name} ${type}: model ${tensorBytes} B exact; ${rows.join('; ')}`);
      }, 60_000);
});
