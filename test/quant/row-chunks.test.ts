/**
 * A tensor too large to read whole is quantized a chunk of rows at a time (src/quant/row-chunks.ts): the
 * parts and the measured error must be those of one kernel call over the whole tensor, byte for byte and
 * float for float, whatever the chunk size, for every kind of parts (ggml blocks; packed codes with
 * scales; with zero points) and for the search with its importance. NaN weights are reported at the
 * tensor's row and column, not the chunk's.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BufferPool } from '../../src/buffer-pool.js';
import { Checkpoint } from '../../src/checkpoint.js';
import { type KernelSpec, allocateParts, newControl } from '../../src/native.js';
import { quantizeInRowChunks } from '../../src/quant/row-chunks.js';
import { TensorQuantizer } from '../../src/quant/tensor-quantizer.js';
import { SafetensorsWriter } from '../../src/safetensors/writer.js';
import { randomBf16 } from '../../scripts/random-bf16.js';
import { tempDir } from '../helpers/models.js';

const dir = tempDir();
const ROWS = 1000, COLS = 512;
let ckpt: Checkpoint;
const weights = randomBf16(ROWS * COLS);
// Row 777, column 5: NaN (bf16 0x7fc0), in the second tensor only.
const withNan = weights.slice();
withNan[2 * (777 * COLS + 5)] = 0xc0;
withNan[2 * (777 * COLS + 5) + 1] = 0x7f;

beforeAll(async () => {
  const model = join(dir, 'model');
  mkdirSync(model);
  const w = await SafetensorsWriter.create(join(model, 'model.safetensors'), [
    { name: 'w.weight', dtype: 'BF16', shape: [ROWS, COLS] },
    { name: 'nan.weight', dtype: 'BF16', shape: [ROWS, COLS] },
  ]);
  await w.write('w.weight', weights);
  await w.write('nan.weight', withNan);
  await w.finish();
  ckpt = await Checkpoint.open(model);
});
afterAll(() => ckpt?.close());

const SPECS: [string, KernelSpec][] = [
  ['Q4_0 blocks', { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16' }],
  ['int4 g32 sym', { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'F16' }],
  ['int4 g32 asym (zero points)', { scheme: 'int_asym', bits: 4, group: 32, scaleDtype: 'F16' }],
  ['int8 per row', { scheme: 'int_sym', bits: 8, group: COLS, scaleDtype: 'F32' }],
  ['Q4_0 searched with an importance', { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' }],
];

describe('quantizing in row chunks', () => {
  for (const [what, spec] of SPECS)
    it(`${what}: the same parts and error sums as one call, for several chunk sizes`, async () => {
      const t = ckpt.tensor('w.weight')!;
      const importance = new Float32Array(COLS).map((_, i) => 0.5 + (i % 7));
      const quantizer = new TensorQuantizer(new Map([['w.weight', importance]]));
      const pool = new BufferPool();
      const job = { name: t.name, spec, rows: ROWS, cols: COLS, srcDtype: 'BF16' as const, threads: 2, measure: true };
      const whole = allocateParts(spec, ROWS, COLS);
      const one = await quantizer.quantize({ ...job, src: await ckpt.read(t), out: whole, control: newControl() });
      expect(one.errors!.count).toBe(ROWS * COLS);
      // One row of the kernels' work is 128 rows here (64K elements): chunks of 1, 2 and 3 units, and
      // one larger than the tensor.
      for (const chunkBytes of [1, 300_000, 400_000, 64 * 2 ** 20]) {
        const out = allocateParts(spec, ROWS, COLS);
        const s = await quantizeInRowChunks(ckpt, t, { ...job, out, control: newControl() }, quantizer, pool, chunkBytes);
        expect(Buffer.from(out.data).equals(Buffer.from(whole.data)), `data, chunks of ${chunkBytes} bytes`).toBe(true);
        if (whole.scales) expect(Buffer.from(out.scales!).equals(Buffer.from(whole.scales))).toBe(true);
        if (whole.zeros) expect(Buffer.from(out.zeros!.buffer, out.zeros!.byteOffset, out.zeros!.length).equals(Buffer.from(whole.zeros.buffer, whole.zeros.byteOffset, whole.zeros.length))).toBe(true);
        expect(s.errors, `error sums, chunks of ${chunkBytes} bytes`).toEqual(one.errors);
        expect(s.nonfinite).toBe(0);
      }
    });

  it('reports the first NaN at its row and column of the tensor', async () => {
    const t = ckpt.tensor('nan.weight')!;
    const spec: KernelSpec = { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'F16' };
    const s = await quantizeInRowChunks(ckpt, t, { name: t.name, spec, rows: ROWS, cols: COLS, srcDtype: 'BF16', out: allocateParts(spec, ROWS, COLS), threads: 2, control: newControl() }, new TensorQuantizer(new Map()), new BufferPool(), 300_000);
    expect(s.nonfinite).toBe(1);
    expect(s.firstNonfinite).toBe(777 * COLS + 5);
  });
});
