/**
 * Runnable GGUF: llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU build, in a child process) loads what
 * quantkit writes for both bundled models in F16, BF16, Q8_0, Q4_0 and the mobile mix, reproduces the
 * reference greedy texts and perplexities through our tokenizer export, and the quantized files stay
 * close to the F16 file's next-token distributions.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyRowTransform } from '../../src/formats/gguf-arch.js';
import { GgufReader } from '../../src/formats/gguf-container.js';
import { planQuantization } from '../../src/plan.js';
import { quantize } from '../../src/quantize.js';
import { Checkpoint } from '../../src/checkpoint.js';
import { readDocuments } from '../../src/eval/perplexity.js';
import { Tokenizer } from '../../src/eval/tokenizer.js';
import { ROOT, STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-gguf-');
const EVAL = join(ROOT, 'data', 'tinystories-valid-excerpt.txt');
const RUNNER = join(ROOT, 'test', 'helpers', 'llama-run.mjs');

function llama(mode: 'generate' | 'compare' | 'tokenize', file: string, args: object): Promise<Record<string, any>> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [RUNNER, mode, file, JSON.stringify(args)], { cwd: ROOT });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code, signal) => (code === 0 ? done(JSON.parse(out.trim().split('\n').pop()!)) : fail(new Error(`llama.cpp run failed (${code ?? signal}): ${err.slice(-2000)}`))));
  });
}

const MODELS = { stories260k: STORIES260K, 'tinystories-656k': TINYSTORIES656K } as const;
const TYPES = ['F16', 'BF16', 'Q8_0', 'Q4_0', 'mobile'] as const;
const files: Record<string, Record<string, string>> = { stories260k: {}, 'tinystories-656k': {} };

beforeAll(async () => {
  for (const [name, model] of Object.entries(MODELS))
    for (const t of TYPES) {
      const { output, plan } = await quantize(model, { bits: 4, format: 'gguf', ggufType: t, output: join(dir, `${name}-${t}`), threads: 1 });
      files[name]![t] = join(output, plan.files[0]!.name);
    }
  // The improved methods write the same block layouts (Q4_0 with searched scales or GPTQ) or llama.cpp's IQ4_NL.
  for (const [name, model] of Object.entries(MODELS))
    for (const m of ['search', 'iq4nl', 'gptq', 'iq4nl-gptq'] as const) {
      // (a shorter calibration than the default keeps this file's time down; GPTQ still beats the search)
      const { output, plan } = await quantize(model, { bits: 4, format: 'gguf', quantMethod: m, output: join(dir, `${name}-${m}`), threads: 1, ...(m.endsWith('gptq') ? { calibration: { samples: 32, length: 128 } } : {}) });
      files[name]![m] = join(output, plan.files[0]!.name);
    }
}, 180_000);

describe('runnable GGUF files', () => {
  it('carry llama.cpp names, hyper-parameters and tokenizer, read back by @huggingface/gguf', async () => {
    const parsed = await gguf(files.stories260k!.Q4_0!, { allowLocalFile: true });
    const md = parsed.metadata as Record<string, unknown>;
    expect(md['general.architecture']).toBe('llama');
    expect(md['llama.block_count']).toBe(5);
    expect(md['llama.embedding_length']).toBe(64);
    expect(md['llama.attention.head_count']).toBe(8);
    expect(md['llama.attention.head_count_kv']).toBe(4);
    expect(md['llama.rope.dimension_count']).toBe(8);
    expect(md['tokenizer.ggml.model']).toBe('llama');
    expect((md['tokenizer.ggml.tokens'] as string[]).length).toBe(512);
    expect((md['tokenizer.ggml.token_type'] as number[])[3]).toBe(6); // <0x00> is a byte token
    expect(md['tokenizer.ggml.bos_token_id']).toBe(1);
    expect(md['tokenizer.ggml.add_bos_token']).toBe(true);
    const names = parsed.tensorInfos.map((t) => t.name);
    expect(names).toContain('token_embd.weight');
    expect(names).toContain('blk.4.ffn_down.weight');
    expect(names).not.toContain('output.weight'); // tied: llama.cpp reuses token_embd
    // Every key our reader sees, @huggingface/gguf sees with the same value.
    const ours = await GgufReader.open(files.stories260k!.Q4_0!);
    try {
      for (const [key, kv] of ours.file.kvs) expect(md[key], key).toEqual(kv.value);
    } finally {
      await ours.close();
    }
    // tinystories-656k stores its tied weight as lm_head.weight: it becomes the token embedding.
    const t = await gguf(files['tinystories-656k']!.F16!, { allowLocalFile: true });
    expect(t.tensorInfos.map((x) => x.name)).toContain('token_embd.weight');
  });

  it('plan the 172-wide down_proj rows as F16 and say why', async () => {
    const ckpt = await Checkpoint.open(STORIES260K);
    try {
      const plan = await planQuantization(ckpt, { bits: 4, format: 'gguf' });
      const down = plan.entries.find((e) => e.tensor.name === 'model.layers.0.mlp.down_proj.weight')!.treatment;
      expect(down).toMatchObject({ kind: 'keep', outDtype: 'F16', outputName: 'blk.0.ffn_down.weight', reason: expect.stringMatching(/row length 172 .*F16 instead/) });
      const q = plan.entries.find((e) => e.tensor.name === 'model.layers.0.self_attn.q_proj.weight')!.treatment;
      expect(q).toMatchObject({ kind: 'quantize', outputName: 'blk.0.attn_q.weight', transform: { kind: 'unpermute-rope', heads: 8, headDim: 8 } });
    } finally {
      await ckpt.close();
    }
  });

  it('mobile mix: output head and the favoured layers\' attn_v in Q8_0, the rest Q4_0', async () => {
    const ckpt = await Checkpoint.open(TINYSTORIES656K);
    try {
      const plan = await planQuantization(ckpt, { bits: 4, format: 'gguf', ggufType: 'mobile' });
      const type = (n: string) => {
        const e = plan.entries.find((x) => x.treatment.outputName === n)!.treatment;
        return e.kind === 'quantize' ? e.label : e.outDtype;
      };
      expect(type('token_embd.weight')).toBe('Q8_0'); // tied: it is the output head
      // Two layers: llama.cpp's rule favours the last eighth (layer 1), not layer 0.
      expect(type('blk.1.attn_v.weight')).toBe('Q8_0');
      expect(type('blk.1.ffn_down.weight')).toBe('Q8_0');
      expect(type('blk.0.attn_v.weight')).toBe('Q4_0');
      expect(type('blk.0.attn_q.weight')).toBe('Q4_0');
      expect(type('blk.1.ffn_gate.weight')).toBe('Q4_0');
    } finally {
      await ckpt.close();
    }
  });

  it('refuse architectures without a mapping, naming the supported ones; gguf-raw still writes them', async () => {
    const { syntheticDir } = await import('../helpers/synthetic-arch.js');
    const model = syntheticDir(join(dir, 'rwkv'), 'rwkv');
    await expect(quantize(model, { bits: 4, format: 'gguf', output: join(dir, 'rwkv-out') })).rejects.toThrow(/model_type 'rwkv': runnable GGUF supports llama, mistral, qwen2, phi3, gemma; use --format gguf-raw/);
    const raw = await quantize(model, { bits: 4, format: 'gguf-raw', output: join(dir, 'rwkv-raw') });
    expect(raw.report.sizes[0]!.predicted).toBe(raw.report.sizes[0]!.actual);
  });

  it('undo Hugging Face\'s rotate-half row order exactly as llama.cpp\'s converter does', () => {
    // 2 heads of 4 rows: HF order [h0: a0 a1 b0 b1] → llama.cpp [a0 b0 a1 b1].
    const rows = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...applyRowTransform(rows, 8, { kind: 'unpermute-rope', heads: 2, headDim: 4 })]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });
});

describe('llama.cpp runs them', () => {
  const expected = {
    stories260k: ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.',
    'tinystories-656k': ', a little girl named Lily lived in a small house with her mom, dad, and her dog, Spot,',
  };
  for (const name of Object.keys(MODELS) as (keyof typeof MODELS)[])
    for (const t of ['F16', 'BF16'] as const)
      it(`${name} ${t}: greedy decoding from "Once upon a time" reproduces the reference text`, async () => {
        const r = await llama('generate', files[name]![t]!, { prompt: 'Once upon a time', maxTokens: 40 });
        expect(r.prompt[0]).toBe(1); // BOS first
        expect(r.text.startsWith(expected[name]), r.text).toBe(true);
      }, 60_000);

  const reference = { stories260k: [3.3109, 6989], 'tinystories-656k': [15.1265, 3187] } as const;
  for (const name of Object.keys(MODELS) as (keyof typeof MODELS)[])
    it(`${name}: F16 perplexity matches the reference; Q8_0, Q4_0 and mobile stay close to F16`, async () => {
      const f = files[name]!;
      const r = await llama('compare', f.F16!, { candidates: [f.Q8_0, f.Q4_0, f.mobile, f.search, f.iq4nl, f.gptq, f['iq4nl-gptq']], text: EVAL, maxTokens: 512 });
      expect(r.reference.predicted).toBe(reference[name][1]); // our tokenizer export tokenizes like Hugging Face's
      expect(r.reference.ppl).toBeCloseTo(reference[name][0], 2);
      const [q8, q4, mobile, search, iq4nl, gptq, iq4nlGptq] = r.candidates;
      // --method search / iq4nl / gptq / iq4nl-gptq: llama.cpp runs them unchanged, the same size as Q4_0, closer to F16.
      for (const c of [search, iq4nl, gptq, iq4nlGptq]) expect(c.size).toBe(q4.size);
      expect(search.klMean).toBeLessThan(q4.klMean);
      expect(gptq.klMean).toBeLessThan(search.klMean);
      expect(iq4nlGptq.klMean).toBeLessThan(iq4nl.klMean);
      expect(iq4nl.klMean).toBeLessThan(0.85 * q4.klMean);
      expect(iq4nl.top1).toBeGreaterThan(q4.top1);
      expect(q8.top1).toBeGreaterThan(0.97);
      expect(q8.klMean).toBeLessThan(0.005);
      expect(q4.klMean).toBeLessThan(0.2);
      expect(q4.top1).toBeGreaterThan(0.75);
      expect(q4.ppl).toBeLessThan(r.reference.ppl * 1.2);
      expect(mobile.klMean).toBeLessThan(q4.klMean);
      expect(mobile.size).toBeGreaterThan(q4.size);
      console.log(`${name} (llama.cpp, ${r.reference.predicted} tokens): F16 ppl ${r.reference.ppl.toFixed(4)}; ` + r.candidates.map((c: any) => `${c.file.split('/').pop()}: ppl ${c.ppl.toFixed(4)}, KL mean ${c.klMean.toFixed(5)}, p99 ${c.klP99.toFixed(4)}, top-1 ${(100 * c.top1).toFixed(2)}%`).join('; '));
    }, 180_000);

  for (const name of Object.keys(MODELS) as (keyof typeof MODELS)[])
    it(`${name}: quantkit's TypeScript tokenizer gives llama.cpp's ids for every evaluation story`, async () => {
      const tok = await Tokenizer.fromFile(join(MODELS[name], 'tokenizer.json'));
      const stories = await readDocuments(EVAL);
      const r = await llama('tokenize', files[name]!.F16!, { texts: stories });
      expect(r.tokens).toHaveLength(21);
      stories.forEach((s, i) => expect(tok.encode(s), `story ${i}`).toEqual(r.tokens[i]));
    }, 60_000);
});

describe('GPT-2-style byte-level BPE tokenizers (Llama 3, Qwen2)', () => {
  it('are exported with their merges and pre-tokenizer, and llama.cpp tokenizes with them', async () => {
    const { byteLevelModel } = await import('../helpers/byte-level-model.js');
    const { dir: model, vocab } = byteLevelModel(join(dir, 'byte-level'));
    const { output, plan } = await quantize(model, { bits: 8, format: 'gguf', output: join(dir, 'byte-level-q8'), threads: 1 });
    const file = join(output, plan.files[0]!.name);
    const md = (await gguf(file, { allowLocalFile: true })).metadata as Record<string, unknown>;
    expect(md['tokenizer.ggml.model']).toBe('gpt2');
    expect(md['tokenizer.ggml.pre']).toBe('llama-bpe');
    expect(md['tokenizer.ggml.merges']).toEqual(['Ġ t', 'h e', 'Ġt he', 'l l', 'he ll']);
    expect(md['tokenizer.chat_template']).toContain('messages');
    const r = await llama('tokenize', file, { text: 'hello the' });
    // "hello" → he + ll + o (merge "he ll" → "hell"), " the" → Ġthe.
    expect(r.tokens).toEqual([vocab['hell'], vocab['o'], vocab['Ġthe']]);
    expect(r.bos).toBe(261);
  }, 60_000);
});

describe('every mapped architecture loads and generates in llama.cpp', () => {
  // phi3's tiny model carries Phi-3's chat tokens (<|end|> ...): llama.cpp's phi3 loader looks them up.
  for (const arch of ['mistral', 'qwen2', 'phi3', 'gemma'] as const)
    it(`${arch} (tiny random weights, Q8_0)`, async () => {
      const { byteLevelModel } = await import('../helpers/byte-level-model.js');
      const { dir: model } = byteLevelModel(join(dir, `tiny-${arch}`), arch);
      const { output, plan } = await quantize(model, { bits: 8, format: 'gguf', output: join(dir, `tiny-${arch}-q8`), threads: 1 });
      const md = (await gguf(join(output, plan.files[0]!.name), { allowLocalFile: true })).metadata as Record<string, unknown>;
      expect(md['general.architecture']).toBe(arch === 'mistral' ? 'llama' : arch);
      const r = await llama('generate', join(output, plan.files[0]!.name), { prompt: 'hello the', maxTokens: 4 });
      expect(r.tokens).toHaveLength(4);
      expect(r.tokens.every((t: number) => Number.isInteger(t) && t >= 0 && t < (arch === 'phi3' ? 516 : 263))).toBe(true);
    }, 60_000);
});

describe('phi3 mapping', () => {
  it('keeps qkv_proj and gate_up_proj fused under llama.cpp\'s names, without rotary reordering', async () => {
    const { byteLevelModel } = await import('../helpers/byte-level-model.js');
    const { dir: model } = byteLevelModel(join(dir, 'tiny-phi3-plan'), 'phi3');
    const ckpt = await Checkpoint.open(model);
    try {
      const plan = await planQuantization(ckpt, { bits: 8, format: 'gguf' });
      const by = new Map(plan.entries.map((e) => [e.tensor.name, e.treatment]));
      expect(by.get('model.layers.0.self_attn.qkv_proj.weight')).toMatchObject({ outputName: 'blk.0.attn_qkv.weight' });
      expect(by.get('model.layers.0.self_attn.qkv_proj.weight')!.transform).toBeUndefined();
      expect(by.get('model.layers.0.mlp.gate_up_proj.weight')).toMatchObject({ outputName: 'blk.0.ffn_up.weight' });
      expect(by.get('lm_head.weight')).toMatchObject({ outputName: 'output.weight' });
    } finally {
      await ckpt.close();
    }
  });
});
