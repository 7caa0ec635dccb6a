/**
 * The native entry points issue 6 added, quickly enough to run against the ASan + UBSan build too
 * (test/sanitizers.test.ts): the forward pass's determinism and argument checks, and the scale search
 * and IQ4_NL kernels with column weights on every matrix of a real model.
 */
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { quantizeInMemory } from '../../src/eval/quantized-values.js';
import { addon } from '../../src/native.js';
import { planQuantization } from '../../src/plan.js';
import { estimateColumnImportance } from '../../src/quant/importance.js';
import { STORIES260K, TINYSTORIES656K, openLlama } from '../helpers/models.js';


describe('forward pass binding', () => {
  it('gives the same logits, bit for bit, on 1 and 2 threads', async () => {
    const { model, tok } = await openLlama(STORIES260K);
    const ids = [1, ...tok.encode('The cat sat on the mat. It was happy.')];
    const a = await model.logits(ids, 1);
    const b = await model.logits(ids, 2);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    // Causal: the first positions do not depend on what follows.
    const prefix = await model.logits(ids.slice(0, 4), 1);
    expect(Buffer.from(prefix.buffer).equals(Buffer.from(a.buffer, 0, prefix.byteLength))).toBe(true);
  });

  it('the binding refuses wrong sizes, tokens outside the vocabulary and bad configs before computing', async () => {
    const { model } = await openLlama(STORIES260K);
    const good = (model as unknown as { weights: Record<string, unknown> }).weights;
    const config = model.config;
    const call = (over: Record<string, unknown>) => () =>
      addon().llamaLogits({ config, weights: good as never, tokens: Int32Array.from([1, 2]), out: new Float32Array(2 * config.vocab), ...over } as never);
    expect(call({ tokens: Int32Array.from([1, config.vocab]) })).toThrow(/tokens\[1\] = 512 is outside the vocabulary/);
    expect(call({ tokens: Int32Array.from([-1]) })).toThrow(/outside the vocabulary/);
    expect(call({ tokens: new Int32Array(0) })).toThrow(/1 to 1048576 ids/);
    expect(call({ out: new Float32Array(10) })).toThrow(/out is too small/);
    expect(call({ weights: { ...good, embed: new Float32Array(5) } })).toThrow(/weights.embed has 5 values, expected 32768/);
    expect(call({ config: { ...config, kvHeads: 3 } })).toThrow(/multiple of config.kvHeads/);
    expect(call({ config: { ...config, normEps: -1 } })).toThrow(/normEps must be a positive number/);
    expect(call({ weights: { ...good, layers: [] } })).toThrow(/weights.layers must be an array of config.layers entries/);
    try {
      call({ tokens: [1, 2] })();
      expect.unreachable();
    } catch (e) {
      expect((e as { code?: string }).code).toBe('ERR_NATIVE_ARGUMENT');
    }
  });
});

describe('search kernels on real weights', () => {
  for (const dir of [STORIES260K, TINYSTORIES656K])
    it(`${dir.split('/').pop()}: every method and format, with column weights, gives finite values and lower error than RTN`, async () => {
      const ckpt = await Checkpoint.open(dir);
      try {
        const importance = await estimateColumnImportance(ckpt);
        const total: Record<string, number> = {};
        for (const [key, o] of [
          ['gguf rtn', { format: 'gguf-raw', quantMethod: 'rtn' }], ['gguf search', { format: 'gguf-raw', quantMethod: 'search' }], ['gguf iq4nl', { format: 'gguf-raw', quantMethod: 'iq4nl' }],
          ['q4_1 search', { format: 'gguf-raw', quantMethod: 'search', mode: 'asym' }], ['int4 asym search', { format: 'safetensors', quantMethod: 'search', mode: 'asym', groupSize: 'row' }],
          ['int8 search', { format: 'safetensors', quantMethod: 'search', bits: 8 }],
        ] as const) {
          const plan = await planQuantization(ckpt, { bits: 4, ...o });
          const q = await quantizeInMemory(ckpt, plan, { importance, keepValues: true, threads: 2 });
          for (const v of q.values.values()) expect(v.every(Number.isFinite)).toBe(true);
          total[key] = q.errors.reduce((s, e) => s + e.sums.sumSqErr, 0) / q.errors.reduce((s, e) => s + e.sums.sumSqRef, 0);
        }
        expect(total['gguf search']).toBeLessThan(total['gguf rtn']!);
        expect(total['gguf iq4nl']).toBeLessThan(total['gguf search']!);
        expect(total['int8 search']).toBeLessThan(1e-3);
      } finally {
        await ckpt.close();
      }
    }, 60_000);
});
