/**
 * The reference forward pass and the TypeScript tokenizer on the bundled models: the published
 * perplexities and token counts, the reference greedy texts, determinism across threads, and the
 * binding's refusals.
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Reference, readDocuments, tokenSequences } from '../../src/eval/perplexity.js';
import { Tokenizer } from '../../src/eval/tokenizer.js';
import { ROOT, STORIES260K, TINYSTORIES656K, tempDir, openLlama } from '../helpers/models.js';

const EVAL = join(ROOT, 'data', 'tinystories-valid-excerpt.txt');
// ../shared/README.md: transformers and an independent numpy pass agree on these.
const REFERENCE = {
  stories260k: { dir: STORIES260K, ppl: 3.3109, tokens: 6989, text: ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.' },
  'tinystories-656k': { dir: TINYSTORIES656K, ppl: 15.1265, tokens: 3187, text: ', a little girl named Lily lived in a small house with her mom, dad, and her dog, Spot,' },
} as const;


describe('reference forward pass', () => {
  for (const [name, ref] of Object.entries(REFERENCE))
    it(`${name}: perplexity on the TinyStories excerpt matches the published value`, async () => {
      const { model, tok } = await openLlama(ref.dir);
      const seqs = tokenSequences(await readDocuments(EVAL), tok, 1, 512);
      expect(seqs).toHaveLength(21);
      const r = await Reference.compute(model, seqs, 2);
      expect(r.result.tokens).toBe(ref.tokens);
      expect(Math.abs(r.result.perplexity - ref.ppl)).toBeLessThan(5e-4);
      // A model compared with itself: no divergence, full agreement.
      const self = await r.compare(model, 1);
      expect(self.kl_mean).toBeLessThan(1e-6); // the reference log-probabilities are kept as f32
      expect(self.top1_agreement).toBe(1);
      expect(self.perplexity).toBeCloseTo(r.result.perplexity, 10);
    }, 60_000);

  for (const [name, ref] of Object.entries(REFERENCE))
    it(`${name}: greedy decoding from "Once upon a time" reproduces the reference text`, async () => {
      const { model, tok } = await openLlama(ref.dir);
      const ids = [1, ...tok.encode('Once upon a time')];
      const start = ids.length;
      const vocab = model.config.vocab;
      for (let i = 0; i < 36; i++) {
        const logits = await model.logits(ids);
        let best = 0;
        for (let v = 1; v < vocab; v++) if (logits[(ids.length - 1) * vocab + v]! > logits[(ids.length - 1) * vocab + best]!) best = v;
        ids.push(best);
      }
      const text = tok.decode(ids.slice(start));
      expect(text.startsWith(ref.text.slice(0, 60)), text).toBe(true);
      expect(tok.decode(ids.slice(1))).toMatch(/^Once upon a time, /);
    }, 60_000);
});

describe('tokenizer.json in TypeScript', () => {
  it('round-trips text and falls back to bytes for characters outside the vocabulary', async () => {
    const tok = await Tokenizer.fromFile(join(STORIES260K, 'tokenizer.json'));
    const text = 'Lily saw a big dog. "Why?" she asked — naïve 猫!';
    const ids = tok.encode(text);
    expect(tok.decode(ids)).toBe(text);
    // 猫 is three UTF-8 bytes, each a <0xNN> token in a 512-token vocabulary.
    expect(ids.filter((i) => i >= 3 && i < 259).length).toBeGreaterThanOrEqual(3);
  });

  it('refuses tokenizers it would get wrong, naming the file', async () => {
    const dir = tempDir('quantkit-tok-');
    const file = join(dir, 'tokenizer.json');
    writeFileSync(file, JSON.stringify({ model: { type: 'BPE', vocab: { a: 0 }, merges: [] }, pre_tokenizer: { type: 'ByteLevel' } }));
    await expect(Tokenizer.fromFile(file)).rejects.toThrow(/byte-level BPE tokenizers .* not supported/);
    writeFileSync(file, JSON.stringify({ model: { type: 'Unigram', vocab: [] } }));
    await expect(Tokenizer.fromFile(file)).rejects.toThrow(new RegExp(`${file}.*Unigram`));
    writeFileSync(file, JSON.stringify({ model: { type: 'BPE', vocab: { a: 0 }, merges: [] }, normalizer: { type: 'NFKC' } }));
    await expect(Tokenizer.fromFile(file)).rejects.toThrow(/normalizer 'NFKC' is not supported/);
  });
});
