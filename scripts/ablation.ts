/**
 * Where the all-matrix loss comes from: stories260k (or the model named) with one group of matrices
 * quantized at a time (int4 g32 sym, F16 scales, RTN and search), the rest kept as stored; then every
 * matrix with asymmetric groups. Prints KL to the original and perplexity (docs/quality.md).
 *
 *   npx tsx scripts/ablation.ts [stories260k|tinystories-656k]
 */
import { join } from 'node:path';
import { Checkpoint } from '../src/checkpoint.js';
import { LlamaModel } from '../src/eval/llama.js';
import { Reference, readDocuments, tokenSequences } from '../src/eval/perplexity.js';
import { quantizeInMemory } from '../src/eval/quantized-values.js';
import { Tokenizer } from '../src/eval/tokenizer.js';
import { type QuantizeOptions, planQuantization } from '../src/plan.js';
import { estimateColumnImportance } from '../src/quant/importance.js';

const ROOT = join(import.meta.dirname, '..');
const dir = join(ROOT, 'models', process.argv[2] ?? 'stories260k');
const ckpt = await Checkpoint.open(dir);
try {
  const tok = await Tokenizer.fromFile(join(dir, 'tokenizer.json'));
  const ref = await Reference.compute(await LlamaModel.load(ckpt), tokenSequences(await readDocuments(join(ROOT, 'data/tinystories-valid-excerpt.txt')), tok, 1, 512), 2);
  const importance = await estimateColumnImportance(ckpt);
  const run = async (label: string, o: Partial<QuantizeOptions>) => {
    for (const quantMethod of ['rtn', 'search'] as const) {
      const plan = await planQuantization(ckpt, { bits: 4, groupSize: 32, mode: 'sym', format: 'safetensors', scaleDtype: 'F16', bitsFor: ['*embed_tokens*=4', 'lm_head*=4'], ...o, quantMethod });
      const q = await quantizeInMemory(ckpt, plan, { importance, keepValues: true, threads: 2 });
      const d = await ref.compare(await LlamaModel.load(ckpt, async (t, v) => q.values.get(t.name) ?? v), 2);
      console.log(`${label.padEnd(28)} ${quantMethod.padEnd(6)} ${plan.bitsPerQuantizedWeight.toFixed(3)} bits/weight  KL ${d.kl_mean.toFixed(4)}  perplexity ${d.perplexity.toFixed(4)}`);
    }
  };
  const groups = ['*embed_tokens*|lm_head*', '*q_proj*|*k_proj*', '*v_proj*', '*o_proj*', '*gate_proj*|*up_proj*', '*down_proj*'];
  const every = groups.flatMap((g) => g.split('|'));
  await run('every matrix', {});
  for (const only of groups) await run(`only ${only}`, { keep: every.filter((g) => !only.split('|').includes(g)) });
  await run('every matrix, asym g64', { mode: 'asym', groupSize: 64 });
  await run('every matrix, asym g32', { mode: 'asym', groupSize: 32 });
} finally {
  await ckpt.close();
}
