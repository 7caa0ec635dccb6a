/**
 * The folder `quantize --format onnx` writes, loaded the way a transformers.js user loads it (local
 * folder, remote loading off, its tokenizer and config): it generates text in Node, and its greedy
 * tokens are the reference pass's on the weights that were written and ONNX Runtime's own.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { LlamaModel } from '../../src/eval/llama.js';
import { OrtDecoder } from '../../src/formats/onnx/ort-session.js';
import { writtenValues } from '../../src/formats/onnx/written-values.js';
import { quantize } from '../../src/quantize.js';
import { CLI, STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-onnx-tjs-');
env.allowRemoteModels = false;
env.localModelPath = dir;

async function generate(folder: string, prompt: string, tokens: number): Promise<{ ids: number[]; text: string }> {
  const tok = await AutoTokenizer.from_pretrained(basename(folder));
  const model = await AutoModelForCausalLM.from_pretrained(basename(folder));
  try {
    const inputs = tok(prompt);
    const out = (await model.generate({ ...inputs, max_new_tokens: tokens, do_sample: false })) as { tolist(): bigint[][] };
    const ids = out.tolist()[0]!.map(Number);
    return { ids, text: tok.decode(ids, { skip_special_tokens: true }) };
  } finally {
    await model.dispose();
  }
}

async function referenceGreedy(folder: string, source: string, prompt: number[], count: number): Promise<number[]> {
  const ckpt = await Checkpoint.open(source);
  const values = await writtenValues(folder, ckpt);
  const model = await LlamaModel.load(ckpt, async (t, v) => values.get(t.name) ?? v);
  await ckpt.close();
  const seq = [...prompt];
  for (let n = 0; n < count; n++) {
    const logits = await model.logits(seq);
    const row = logits.subarray((seq.length - 1) * model.config.vocab);
    seq.push(row.indexOf(Math.max(...row)));
  }
  return seq;
}

describe('transformers.js loads the exported folder offline', () => {
  it('quantize --bits 4 --format onnx models/stories260k: generates the reference tokens in Node', async () => {
    const out = join(dir, 'stories260k-q4');
    await promisify(execFile)(process.execPath, [CLI, 'quantize', '--bits', '4', '--format', 'onnx', STORIES260K, '-o', out, '--threads', '1']);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config['transformers.js_config']).toEqual({ dtype: 'q4', use_external_data_format: { 'model_q4.onnx': 1 } });
    const { ids, text } = await generate(out, 'Once upon a time', 30);
    expect(text.startsWith('Once upon a time')).toBe(true);
    expect(text.length).toBeGreaterThan('Once upon a time'.length + 40);
    const prompt = ids.slice(0, ids.length - 30);
    expect(ids).toEqual(await referenceGreedy(out, STORIES260K, prompt, 30));
    const ort = await OrtDecoder.open(out);
    expect(await ort.greedy(prompt, 30)).toEqual(ids);
    await ort.close();
    console.log(`stories260k q4 through transformers.js: ${JSON.stringify(text)}`);
  }, 60_000);

  it('tinystories-656k (GroupQueryAttention, tied head stored as lm_head) q8 asym g64', async () => {
    const r = await quantize(TINYSTORIES656K, { bits: 8, mode: 'asym', groupSize: 64, format: 'onnx', output: join(dir, 'tinystories-q8'), threads: 1 });
    expect(dirname(r.output)).toBe(dir);
    const { ids, text } = await generate(r.output, 'The little dog', 20);
    expect(ids).toEqual(await referenceGreedy(r.output, TINYSTORIES656K, ids.slice(0, ids.length - 20), 20));
    console.log(`tinystories-656k q8 through transformers.js: ${JSON.stringify(text)}`);
  }, 60_000);
});
