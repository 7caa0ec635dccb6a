/**
 * The importance pre-pass's row sums (addon weightedRowSquaresFile, src/quant/importance.ts) are defined
 * by one order: for each row, (w_i * w_i) * a_i in double added to partial sum i % 8 in column order, the
 * eight partial sums added pairwise ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)), then rounded to f32. The addon
 * reads the matrix from the file itself, in chunks of rows, and sums a row's lanes side by side in vector
 * registers where the CPU has them; every row, wherever it falls in a chunk and for any thread count, must
 * be that float. The embedding's column sums (columnSquaresFile) accumulate row after row exactly as the
 * JS loop they replaced. A file it cannot read that far is a rejection with the reason, never a crash.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addon } from '../../src/native.js';

const dir = mkdtempSync(join(tmpdir(), 'qk-rowsq-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `bytes` written after a `prefix`-byte header into a file; its descriptor (closed by the caller). */
function fileWith(bytes: Uint8Array, prefix: number, name: string): number {
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([Buffer.alloc(prefix, 0xab), bytes]));
  return openSync(path, 'r');
}

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
    it(`equals the eight-lane double sum of every row (${dtype}, row counts around the block size, 1 and 2 threads)`, async () => {
      // [100, 3000]: several chunks of rows per call (a chunk is 256 KiB of rows), none a multiple of 8 rows.
      for (const [rows, cols] of [[1, 40], [7, 33], [8, 64], [13, 257], [37, 96], [100, 3000]] as const) {
        const { bytes, values } = matrix(dtype, rows, cols, rows * 1000 + cols);
        const r = rng(cols);
        const a = new Float32Array(cols).map(() => r() * 4);
        const want = new Float32Array(rows);
        for (let j = 0; j < rows; j++) {
          const s = [0, 0, 0, 0, 0, 0, 0, 0];
          for (let i = 0; i < cols; i++) {
            const w = values[j * cols + i]!;
            s[i % 8] = s[i % 8]! + w * w * a[i]!;
          }
          want[j] = s[0]! + s[1]! + (s[2]! + s[3]!) + (s[4]! + s[5]! + (s[6]! + s[7]!));
        }
        const fd = fileWith(bytes, 13, `${dtype}-${rows}x${cols}`);
        try {
          for (const threads of [1, 2]) {
            const out = new Float32Array(rows);
            await addon().weightedRowSquaresFile({ fd, offset: 13, srcDtype: dtype, rows, cols, a, out, threads });
            expect(Array.from(out), `${rows}x${cols} ${dtype}, ${threads} threads`).toEqual(Array.from(want));
          }
        } finally {
          closeSync(fd);
        }
      }
    });

  for (const dtype of ['BF16', 'F16', 'F32'] as const)
    it(`columnSquaresFile: every column accumulated row after row as the JS loop does (${dtype}, several chunks, 1 and 2 threads)`, async () => {
      // 1500 x 1500: more than one 4 MiB chunk of rows in BF16/F16 and three in F32; 1500 columns end in a
      // partial block of 256 whose width is not a multiple of 8.
      for (const [rows, cols] of [[3, 5], [1500, 1500]] as const) {
        const { bytes, values } = matrix(dtype, rows, cols, rows + cols);
        const want = new Float32Array(cols).fill(0.25);  // accumulates into what out holds
        for (let j = 0; j < rows; j++) for (let i = 0; i < cols; i++) want[i] = want[i]! + values[j * cols + i]! * values[j * cols + i]!;
        const fd = fileWith(bytes, 6, `col-${dtype}-${rows}x${cols}`);
        try {
          for (const threads of [1, 2]) {
            const out = new Float32Array(cols).fill(0.25);
            await addon().columnSquaresFile({ fd, offset: 6, srcDtype: dtype, rows, cols, out, threads });
            expect(Array.from(out), `${rows}x${cols} ${dtype}, ${threads} threads`).toEqual(Array.from(want));
          }
        } finally {
          closeSync(fd);
        }
      }
    });

  it('rejects with the reason when the file ends early or cannot be read, and refuses bad arguments', async () => {
    const rows = 200, cols = 1000;
    const { bytes } = matrix('BF16', rows, cols, 7);
    const a = new Float32Array(cols).fill(1);
    const out = new Float32Array(rows);
    const fd = fileWith(bytes.subarray(0, bytes.length - 1), 0, 'short');  // one byte missing
    try {
      await expect(addon().weightedRowSquaresFile({ fd, offset: 0, srcDtype: 'BF16', rows, cols, a, out, threads: 2 })).rejects.toThrow(/the file ends at byte 399999, before the end of the tensor's data \(byte 400000\)/);
      await expect(addon().columnSquaresFile({ fd, offset: 0, srcDtype: 'BF16', rows, cols, out: new Float32Array(cols), threads: 2 })).rejects.toThrow(/the file ends at byte 399999, before the end of the tensor's data \(byte 400000\)/);
    } finally {
      closeSync(fd);
    }
    const folder = openSync(dir, 'r');  // pread on a directory: EISDIR
    try {
      await expect(addon().weightedRowSquaresFile({ fd: folder, offset: 0, srcDtype: 'BF16', rows, cols, a, out, threads: 2 })).rejects.toThrow(/cannot read the file at byte \d+: Is a directory/);
    } finally {
      closeSync(folder);
    }
    expect(() => addon().weightedRowSquaresFile({ fd: -1, offset: 0, srcDtype: 'BF16', rows, cols, a, out })).toThrow(/fd/);
    expect(() => addon().weightedRowSquaresFile({ fd: 0, offset: -4, srcDtype: 'BF16', rows, cols, a, out })).toThrow(/offset/);
    expect(() => addon().weightedRowSquaresFile({ fd: 0, offset: 0, srcDtype: 'BF16', rows, cols, a: new Float32Array(3), out })).toThrow();
    expect(() => addon().weightedRowSquaresFile({ fd: 0, offset: 0, srcDtype: 'BF16', rows, cols, a, out: new Float32Array(rows - 1) })).toThrow(/one value per row/);
    expect(() => addon().columnSquaresFile({ fd: 0, offset: 0, srcDtype: 'BF16', rows, cols, out: new Float32Array(rows) })).toThrow(/one value per column/);
    expect(() => addon().columnSquaresFile({ fd: 0, offset: 0, srcDtype: 'I8' as 'BF16', rows, cols, out: new Float32Array(cols) })).toThrow(/srcDtype/);
  });
});
