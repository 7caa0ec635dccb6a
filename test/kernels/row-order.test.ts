/**
 * quantize's rowOrder and measure: GGUF's rotary q/k row reorder applied by the kernels as they read
 * the rows, and the round trip's error measured in the same pass. Both must give exactly what the
 * reordered copy quantized and measured separately (errorStats) gives: the same bytes, the same sums,
 * for every thread count.
 */
import { describe, expect, it } from 'vitest';
import { applyRowTransform, rowOrderOf } from '../../src/formats/gguf-arch.js';
import { addon, allocateParts, type KernelSpec } from '../../src/native.js';
import { STORIES260K, loadFloatTensors } from '../helpers/models.js';
import { randomBf16 } from '../../scripts/random-bf16.js';

const A = addon();

const SPECS: KernelSpec[] = [
  { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16' },
  { scheme: 'q8_0', bits: 8, group: 32, scaleDtype: 'F16' },
  { scheme: 'int_asym', bits: 4, group: 32, scaleDtype: 'BF16' },
  { scheme: 'q4_k', bits: 4, group: 256, scaleDtype: 'F16' },
];

describe('quantize with rowOrder and measure', async () => {
  const tensors = await loadFloatTensors(STORIES260K);
  const q = tensors.get('model.layers.0.self_attn.q_proj.weight')!;
  const [rows, cols] = q.shape as [number, number];
  // stories260k: 8 heads of 8 (the same permutation llama.cpp's converter applies).
  const transform = { kind: 'unpermute-rope' as const, heads: 8, headDim: rows / 8 };
  const order = rowOrderOf(rows, transform);

  // A real q_proj (one chunk of rows), and a synthetic bf16 one of many chunks (32 rows each at 2048 columns).
  const big = { rows: 512, cols: 2048, raw: randomBf16(512 * 2048), dtype: 'BF16', transform: { kind: 'unpermute-rope' as const, heads: 4, headDim: 128 } };
  const inputs = [{ label: 'stories260k q_proj', rows, cols, raw: q.raw, dtype: q.dtype, transform }, { label: 'bf16 512x2048', ...big }];
  for (const input of inputs)
    for (const spec of SPECS) {
      if (input.cols % spec.group) continue;
      for (const threads of [1, 2])
        it(`${input.label}, ${spec.scheme}, ${threads} thread(s): the reordered copy's bytes and errorStats' sums`, async () => {
          const { rows, cols, raw } = input;
          const srcDtype = input.dtype as 'F32';
          const reordered = applyRowTransform(raw, rows, input.transform);
          const direct = allocateParts(spec, rows, cols);
          const status = await A.quantize({ spec, rows, cols, src: raw, srcDtype, out: direct, threads, rowOrder: rowOrderOf(rows, input.transform), measure: true });
          const copy = allocateParts(spec, rows, cols);
          await A.quantize({ spec, rows, cols, src: reordered, srcDtype, out: copy, threads });
          expect(Buffer.from(direct.data).equals(Buffer.from(copy.data))).toBe(true);
          if (copy.scales) expect(Buffer.from(direct.scales!).equals(Buffer.from(copy.scales))).toBe(true);
          if (copy.zeros) expect([...direct.zeros!]).toEqual([...copy.zeros]);
          const separate = await A.errorStats({ spec, rows, cols, src: reordered, srcDtype, parts: copy, threads });
          expect(status.errors).toEqual(separate);
          expect(separate.sumSqErr).toBeGreaterThan(0);
          expect(status.rowOrderApplied).toBe(true); // quantize refuses to go on without it (an older addon)
        });
    }

  it('without rowOrder, measure gives errorStats\' sums on the source as it is', async () => {
    const spec = SPECS[0]!;
    const out = allocateParts(spec, rows, cols);
    const status = await A.quantize({ spec, rows, cols, src: q.raw, srcDtype: q.dtype as 'F32', out, threads: 2, measure: true });
    expect(status.errors).toEqual(await A.errorStats({ spec, rows, cols, src: q.raw, srcDtype: q.dtype as 'F32', parts: out, threads: 1 }));
    const plain = await A.quantize({ spec, rows, cols, src: q.raw, srcDtype: q.dtype as 'F32', out });
    expect(plain.errors).toBeUndefined();
    expect(plain.rowOrderApplied).toBeUndefined();
  });

  it('a NaN is reported at the output row it lands in', async () => {
    const spec = SPECS[0]!;
    const src = q.raw.slice();
    const bytesPerValue = src.length / (rows * cols);
    const sourceRow = order[5]!; // output row 5 reads this source row
    src.fill(0xff, (sourceRow * cols + 3) * bytesPerValue, (sourceRow * cols + 4) * bytesPerValue); // all-ones: a NaN in F32, BF16 and F16
    const status = await A.quantize({ spec, rows, cols, src, srcDtype: q.dtype as 'F32', out: allocateParts(spec, rows, cols), threads: 2, rowOrder: order });
    expect(status.nonfinite).toBe(1);
    expect(status.firstNonfinite).toBe(5 * cols + 3);
  });

  it('a rowOrder that is not a permutation of the rows is refused', async () => {
    const spec = SPECS[0]!;
    const out = allocateParts(spec, rows, cols);
    const bad = [Int32Array.from(order, (v, i) => (i === 1 ? order[0]! : v)), new Int32Array(rows - 1), Int32Array.from(order, (v, i) => (i === 0 ? rows : v))];
    for (const rowOrder of bad) {
      let err: (Error & { code?: string }) | undefined;
      try {
        await A.quantize({ spec, rows, cols, src: q.raw, srcDtype: q.dtype as 'F32', out, rowOrder });
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect(err?.code).toBe('ERR_NATIVE_ARGUMENT');
      expect(err?.message).toMatch(/rowOrder/);
    }
  });
});
