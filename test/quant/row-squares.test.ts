/**
 * The importance pre-pass's row sums (addon weightedRowSquares, src/quant/importance.ts) are defined as
 * the JS loop they replaced: for each row, sum_i (w_i * w_i) * a_i in double, in column order, then
 * rounded to f32. The addon sums several rows side by side (and BF16 in vector lanes where the CPU has
 * them); every row, whatever its position in a block of rows or the thread count, must be that float.
 */
import { describe, expect, it } from 'vitest';
import { addon } from '../../src/native.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A rows x cols matrix in `dtype` with a wide range of magnitudes, and its values as f32. */
function matrix(dtype: 'BF16' | 'F16' | 'F32', rows: number, cols: number, seed: number): { bytes: Uint8Array; values: Float32Array } {
  const r = rng(seed);
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = (r() - 0.5) * 2 ** Math.floor(r() * 12 - 8);
  if (dtype === 'F32') return { bytes: new Uint8Array(values.buffer.slice(0)), values };
  const h = new Uint16Array(values.length);
  const bits = new Uint32Array(values.buffer);
  for (let i = 0; i < values.length; i++) {
    if (dtype === 'BF16') h[i] = bits[i]! >>> 16;  // truncation: any bf16 will do
    else {
      const v = values[i]!;
      h[i] = f16Bits(v);
    }
  }
  // the values the kernel sees
  for (let i = 0; i < values.length; i++) values[i] = dtype === 'BF16' ? new Float32Array(new Uint32Array([h[i]! << 16]).buffer)[0]! : f16Value(h[i]!);
  return { bytes: new Uint8Array(h.buffer), values };
}

function f16Bits(v: number): number {
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  const e = Math.min(Math.floor(Math.log2(a)), 15);
  const m = Math.round((a / 2 ** e - 1) * 1024);
  return sign | ((e + 15) << 10) | Math.min(m, 1023);
}

function f16Value(h: number): number {
  const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

describe('weightedRowSquares', () => {
  for (const dtype of ['BF16', 'F16', 'F32'] as const)
    it(`equals the column-order double sum of every row (${dtype}, row counts around the block size, 1 and 2 threads)`, async () => {
      for (const [rows, cols] of [[1, 40], [7, 33], [8, 64], [13, 257], [37, 96]] as const) {
        const { bytes, values } = matrix(dtype, rows, cols, rows * 1000 + cols);
        const r = rng(cols);
        const a = new Float32Array(cols).map(() => r() * 4);
        const want = new Float32Array(rows);
        for (let j = 0; j < rows; j++) {
          let s = 0;
          for (let i = 0; i < cols; i++) {
            const w = values[j * cols + i]!;
            s += w * w * a[i]!;
          }
          want[j] = s;
        }
        for (const threads of [1, 2]) {
          const out = new Float32Array(rows);
          await addon().weightedRowSquares({ src: bytes, srcDtype: dtype, rows, cols, a, out, threads });
          expect(Array.from(out), `${rows}x${cols} ${dtype}, ${threads} threads`).toEqual(Array.from(want));
        }
      }
    });
});
