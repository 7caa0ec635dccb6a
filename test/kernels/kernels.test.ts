/**
 * The addon's kernels against the independent reference in test/helpers/reference-quant.ts:
 * byte-for-byte on real weights of both bundled models and on adversarial synthetic rows.
 */
import { describe, expect, it } from 'vitest';
import { addon, allocateParts, type KernelScheme, type KernelSpec } from '../../src/native.js';
import type { FloatDtype } from '../../src/safetensors/dtypes.js';
import { bf16Bits, bf16Value, dequantGgml, f16Bits, intQuant, packRows, q4_0, q4_1, q8_0 } from '../helpers/reference-quant.js';
import { STORIES260K, TINYSTORIES656K, loadFloatTensors } from '../helpers/models.js';

const A = addon();

function encode(values: ArrayLike<number>, dtype: FloatDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(Float32Array.from(values).buffer);
  const h = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) h[i] = dtype === 'BF16' ? bf16Bits(values[i]!) : f16Bits(Math.fround(values[i]!));
  return new Uint8Array(h.buffer);
}

/** The values the kernel actually sees after the source dtype's rounding. */
function asSeen(values: ArrayLike<number>, dtype: FloatDtype): Float32Array {
  const bytes = encode(values, dtype);
  if (dtype === 'F32') return new Float32Array(bytes.buffer);
  const h = new Uint16Array(bytes.buffer);
  return Float32Array.from(h, (b) => (dtype === 'BF16' ? bf16Value(b) : f16ValueOf(b)));
}
function f16ValueOf(b: number) {
  const s = b & 0x8000 ? -1 : 1, e = (b >> 10) & 31, m = b & 1023;
  return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
}

async function quant(spec: KernelSpec, rows: number, cols: number, values: ArrayLike<number>, dtype: FloatDtype) {
  const out = allocateParts(spec, rows, cols);
  const status = await A.quantize({ spec, rows, cols, src: encode(values, dtype), srcDtype: dtype, out });
  return { out, status };
}

function ggmlSpec(scheme: 'q8_0' | 'q4_0' | 'q4_1'): KernelSpec {
  return { scheme, bits: scheme === 'q8_0' ? 8 : 4, group: 32, scaleDtype: 'F16' };
}
const REF = { q8_0, q4_0, q4_1 };

/** Adversarial rows: ties, signed zeros, subnormals, constants, outliers, tiny and huge values. */
function adversarialRows(cols: number, seed: number): number[][] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const rows: number[][] = [];
  rows.push(Array.from({ length: cols }, () => 0));
  rows.push(Array.from({ length: cols }, (_, i) => (i % 2 ? -0 : 0)));
  rows.push(Array.from({ length: cols }, () => 0.5));
  rows.push(Array.from({ length: cols }, () => -3.25));
  rows.push(Array.from({ length: cols }, (_, i) => (i % 32 === 5 ? 1000 : rnd() * 0.01)));
  rows.push(Array.from({ length: cols }, (_, i) => (i % 32 === 7 ? -1000 : rnd() * 0.01)));
  rows.push(Array.from({ length: cols }, () => rnd() * 1e-40)); // subnormal float32
  rows.push(Array.from({ length: cols }, () => rnd() * 1e-6));
  rows.push(Array.from({ length: cols }, (_, i) => (i % 16) - 8)); // exact .5 ties after scaling
  rows.push(Array.from({ length: cols }, (_, i) => ((i % 15) - 7) * 0.5));
  rows.push(Array.from({ length: cols }, (_, i) => (i % 3 === 0 ? 2 : -2))); // +max and -max tie in amax
  rows.push(Array.from({ length: cols }, () => rnd() * 3e4));
  for (let k = 0; k < 4; k++) rows.push(Array.from({ length: cols }, () => rnd() * 0.05));
  return rows;
}

describe('ggml block kernels match the reference byte for byte', () => {
  for (const scheme of ['q8_0', 'q4_0', 'q4_1'] as const) {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      it(`${scheme} on adversarial rows from ${dtype}`, async () => {
        for (const cols of [32, 64, 96, 256]) {
          const rows = adversarialRows(cols, cols * 7 + 1);
          const flat = rows.flat();
          const { out, status } = await quant(ggmlSpec(scheme), rows.length, cols, flat, dtype);
          expect(status.nonfinite).toBe(0);
          const want = REF[scheme](asSeen(flat, dtype));
          expect(Buffer.compare(out.data, want)).toBe(0);
        }
      });
    }
  }

  for (const [label, dir] of [['stories260k (bf16)', STORIES260K], ['tinystories-656k (f32)', TINYSTORIES656K]] as const) {
    it(`every 32-divisible matrix of ${label}`, async () => {
      const tensors = await loadFloatTensors(dir);
      let checked = 0;
      for (const [name, t] of tensors) {
        const cols = t.shape[t.shape.length - 1]!;
        if (t.shape.length < 2 || cols % 32) continue;
        const rows = t.values.length / cols;
        for (const scheme of ['q8_0', 'q4_0', 'q4_1'] as const) {
          const out = allocateParts(ggmlSpec(scheme), rows, cols);
          await A.quantize({ spec: ggmlSpec(scheme), rows, cols, src: t.raw, srcDtype: t.dtype as FloatDtype, out });
          expect(Buffer.compare(out.data, REF[scheme](t.values)), `${name} ${scheme}`).toBe(0);
          // dequantization equals the reference decoder
          const deq = new Float32Array(rows * cols);
          await A.dequantize({ spec: ggmlSpec(scheme), rows, cols, parts: out, out: deq });
          expect(Buffer.compare(Buffer.from(deq.buffer), Buffer.from(dequantGgml(scheme.toUpperCase() as 'Q4_0', out.data, rows * cols).buffer))).toBe(0);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(20);
    });
  }
});

describe('compressed-tensors int kernels match the reference', () => {
  const cases: [number, boolean, number, FloatDtype][] = [];
  for (const bits of [4, 8]) for (const sym of [true, false]) for (const g of [32, 64, 128, 43]) for (const sd of ['F16', 'BF16', 'F32'] as const) cases.push([bits, sym, g, sd]);
  for (const [bits, sym, g, scaleDtype] of cases) {
    it(`int${bits} ${sym ? 'sym' : 'asym'} g${g} ${scaleDtype} scales`, async () => {
      for (const cols of g === 43 ? [43, 172] : [g, 2 * g, 4 * g]) {
        const rows = adversarialRows(cols, bits * 31 + g);
        const flat = rows.flat();
        const spec: KernelSpec = { scheme: sym ? 'int_sym' : 'int_asym', bits: bits as 4 | 8, group: g, scaleDtype };
        for (const dtype of ['F32', 'BF16'] as const) {
          const { out } = await quant(spec, rows.length, cols, flat, dtype);
          const ref = intQuant(asSeen(flat, dtype), rows.length, cols, g, bits, sym, scaleDtype);
          expect(Buffer.compare(out.data, packRows(ref.q, rows.length, cols, bits)), `packed cols=${cols} ${dtype}`).toBe(0);
          const scales = scaleDtype === 'F32' ? new Uint8Array(ref.scales.buffer) : new Uint8Array(ref.scaleBits.buffer);
          expect(Buffer.compare(out.scales!, scales), `scales cols=${cols}`).toBe(0);
          if (!sym) expect(Array.from(out.zeros!)).toEqual(Array.from(ref.zeros));
          // Round trip: (q - zp) * scale
          const deq = new Float32Array(rows.length * cols);
          await A.dequantize({ spec, rows: rows.length, cols, parts: out, out: deq });
          for (let i = 0; i < deq.length; i += 7) {
            const gi = Math.floor(i / g);
            expect(deq[i]).toBe(Math.fround((ref.q[i]! - ref.zeros[gi]!) * ref.scales[gi]!));
          }
        }
      }
    });
  }

  it('packs rows whose length is not a multiple of the word (padding is zero)', async () => {
    const cols = 43, rows = 3;
    const values = Array.from({ length: rows * cols }, (_, i) => Math.sin(i));
    const spec: KernelSpec = { scheme: 'int_sym', bits: 4, group: 43, scaleDtype: 'F32' };
    const { out } = await quant(spec, rows, cols, values, 'F32');
    expect(out.data.length).toBe(rows * 6 * 4);
    const ref = intQuant(asSeen(values, 'F32'), rows, cols, 43, 4, true, 'F32');
    expect(Buffer.compare(out.data, packRows(ref.q, rows, cols, 4))).toBe(0);
    expect(out.data[5 * 4 + 3]! >> 4).toBe(0); // element 47 of row 0 is padding
  });
});

describe('error statistics', () => {
  it('equal sums computed in double from the dequantized values', async () => {
    const tensors = await loadFloatTensors(STORIES260K);
    const t = tensors.get('model.layers.2.mlp.gate_proj.weight')!;
    const [rows, cols] = t.shape as [number, number];
    for (const spec of [ggmlSpec('q4_0'), { scheme: 'int_asym', bits: 4, group: 64, scaleDtype: 'BF16' } as KernelSpec]) {
      const out = allocateParts(spec, rows, cols);
      await A.quantize({ spec, rows, cols, src: t.raw, srcDtype: 'BF16', out });
      const deq = new Float32Array(rows * cols);
      await A.dequantize({ spec, rows, cols, parts: out, out: deq });
      const s = await A.errorStats({ spec, rows, cols, src: t.raw, srcDtype: 'BF16', parts: out });
      let e2 = 0, x2 = 0, max = 0;
      for (let i = 0; i < deq.length; i++) {
        const e = deq[i]! - t.values[i]!;
        e2 += e * e;
        x2 += t.values[i]! * t.values[i]!;
        max = Math.max(max, Math.abs(e));
      }
      expect(s.count).toBe(rows * cols);
      expect(s.nonfinite).toBe(0);
      // Same terms summed in the same order in double: identical up to the last bits.
      expect(Math.abs(s.sumSqErr - e2) / e2).toBeLessThan(1e-12);
      expect(Math.abs(s.sumSqRef - x2) / x2).toBeLessThan(1e-12);
      expect(s.maxAbsErr).toBe(max);
      expect(s.sumSqErr).toBeGreaterThan(0);
    }
  });

  it('report NaN and Inf inputs instead of quantizing them silently', async () => {
    const values = Array.from({ length: 64 }, (_, i) => i / 64);
    values[37] = NaN;
    values[40] = Infinity;
    const { status } = await quant(ggmlSpec('q8_0'), 2, 32, values, 'F32');
    expect(status.nonfinite).toBe(2);
    expect(status.firstNonfinite).toBe(37);
  });

  it('flag scales that overflow f16', async () => {
    const values = Array.from({ length: 64 }, (_, i) => (i === 3 ? 1e9 : 1));
    const { status } = await quant(ggmlSpec('q8_0'), 2, 32, values, 'F32');
    expect(status.scaleOverflow).toBe(1);
    expect(status.firstOverflowRow).toBe(0);
    const f32 = await quant({ scheme: 'int_sym', bits: 8, group: 32, scaleDtype: 'F32' }, 2, 32, values, 'F32');
    expect(f32.status.scaleOverflow).toBe(0);
  });
});

describe('the binding rejects bad arguments with a TypeError instead of crashing', () => {
  const spec = ggmlSpec('q4_0');
  const src = new Uint8Array(64 * 4);
  const good = () => ({ spec, rows: 2, cols: 32, src, srcDtype: 'F32' as FloatDtype, out: { data: new Uint8Array(36) } });
  const bad: [string, unknown][] = [
    ['no arguments', undefined],
    ['wrong scheme', { ...good(), spec: { ...spec, scheme: 'q3_x' } }],
    ['group that does not fit ggml', { ...good(), spec: { ...spec, group: 64 } }],
    ['row not a multiple of 32', { ...good(), cols: 30 }],
    ['negative rows', { ...good(), rows: -1 }],
    ['fractional cols', { ...good(), cols: 32.5 }],
    ['huge rows', { ...good(), rows: 2 ** 52 }],
    ['source too small', { ...good(), src: new Uint8Array(10) }],
    ['output too small', { ...good(), out: { data: new Uint8Array(35) } }],
    ['source not a typed array', { ...good(), src: [1, 2, 3] }],
    ['unknown dtype', { ...good(), srcDtype: 'F8' }],
    ['bits mismatch', { ...good(), spec: { ...spec, bits: 8 } }],
    ['missing scales for int', { ...good(), spec: { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'F16' } }],
    ['group not dividing row', { ...good(), spec: { scheme: 'int_sym', bits: 4, group: 33, scaleDtype: 'F16' }, out: { data: new Uint8Array(64), scales: new Uint8Array(8) } }],
  ];
  for (const [label, args] of bad) {
    it(label, () => {
      let err: (Error & { code?: string }) | undefined;
      try {
        (A.quantize as (a: unknown) => unknown)(args);
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect(err).toBeInstanceOf(TypeError);
      expect(err?.code).toBe('ERR_NATIVE_ARGUMENT');
      expect(err?.message).toMatch(/^quantkit addon: /);
    });
  }

  it('dequantize demands a Float32Array output of the right size', () => {
    expect(() => A.dequantize({ spec, rows: 2, cols: 32, parts: { data: new Uint8Array(36) }, out: new Uint8Array(256) as unknown as Float32Array })).toThrow(/Float32Array/);
    expect(() => A.dequantize({ spec, rows: 2, cols: 32, parts: { data: new Uint8Array(36) }, out: new Float32Array(63) })).toThrow(/too small/);
  });

  it('layout sizes follow the documented formulas', () => {
    expect(A.layout({ spec, cols: 4096 }).dataBytesPerRow).toBe(128 * 18);
    expect(A.layout({ spec: ggmlSpec('q8_0'), cols: 4096 }).dataBytesPerRow).toBe(128 * 34);
    const int4: KernelSpec = { scheme: 'int_asym', bits: 4, group: 128, scaleDtype: 'BF16' };
    expect(A.layout({ spec: int4, cols: 172 * 4 })).toMatchObject({ error: 'group size must divide the row length' });
    expect(A.layout({ spec: int4, cols: 4096 })).toEqual({ error: null, dataBytesPerRow: 2048, scaleBytesPerRow: 64, zeroBytesPerRow: 32, rowsPerChunk: 16 });
    // The kernels' unit of work: about 64K elements of whole rows, at least one row.
    expect(A.layout({ spec: int4, cols: 128 }).rowsPerChunk).toBe(512);
    expect(A.layout({ spec: int4, cols: 3 * 2 ** 16 }).rowsPerChunk).toBe(1);
  });
});

describe("llama.cpp's quantizer types (K-quants, Q5_0/Q5_1, imatrix): the binding's contract", () => {
  const spec = (scheme: KernelScheme, bits: number, group: number, method: KernelSpec['method'] = 'rtn'): KernelSpec => ({ scheme, bits, group, scaleDtype: 'F16', method });
  const TYPES: [KernelScheme, number, number, number][] = [
    ['q5_0', 5, 32, 22], ['q5_1', 5, 32, 24], ['q2_k', 2, 256, 84], ['q3_k', 3, 256, 110], ['q4_k', 4, 256, 144], ['q5_k', 5, 256, 176], ['q6_k', 6, 256, 210],
  ];

  it('block layouts are ggml\'s: bytes per block of 32 or super-block of 256', () => {
    for (const [scheme, bits, group, bytes] of TYPES) {
      expect(A.layout({ spec: spec(scheme, bits, group), cols: 4096 }), scheme).toEqual({ error: null, dataBytesPerRow: (4096 / group) * bytes, scaleBytesPerRow: 0, zeroBytesPerRow: 0, rowsPerChunk: 16 });
      expect(A.layout({ spec: spec(scheme, bits, group, 'imatrix'), cols: 4096 }).error, scheme).toBeNull();
    }
  });

  it('refuses what llama.cpp cannot write, saying why', () => {
    const error = (s: KernelSpec, cols = 4096) => A.layout({ spec: s, cols }).error;
    expect(error(spec('q4_k', 4, 256), 4000)).toMatch(/multiple of 256/);
    expect(error(spec('q4_k', 4, 32))).toMatch(/super-blocks \(groups\) of 256/);
    expect(error(spec('q5_0', 4, 32))).toMatch(/bits do not match/);
    expect(error(spec('q6_k', 6, 256, 'search'))).toMatch(/method rtn or imatrix/);
    expect(error(spec('q5_1', 5, 32, 'hqq'))).toMatch(/only Q4_1/);
    expect(error({ scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'F16', method: 'imatrix' })).toMatch(/for ggml block types/);
    const cols = 512, src = new Uint8Array(cols * 2);
    const out = allocateParts(spec('q4_k', 4, 256), 1, cols);
    const call = (args: object) => () => A.quantize({ spec: spec('q4_k', 4, 256, 'imatrix'), rows: 1, cols, src, srcDtype: 'BF16', out, ...args });
    expect(call({})).toThrow(/'imatrix' needs weights/);
    expect(call({ weights: new Float32Array(cols - 1) })).toThrow(/one value per column \(512\)/);
    expect(call({ cols: 500 })).toThrow(/multiple of 256/);
  });

  it('reports NaN/Inf and f16 scale overflow as the other ggml types do, and any thread count gives the same bytes', async () => {
    const cols = 768, rows = 6;
    const x = new Float32Array(rows * cols).map((_, i) => Math.sin(i * 0.37) * 0.05);
    x[cols + 300] = NaN;
    x[cols + 301] = Infinity;
    for (let j = 0; j < cols; j++) x[4 * cols + j] = (j % 2 ? -1 : 1) * 3e9; // scales past f16
    for (const [scheme, bits, group] of TYPES) {
      const s = spec(scheme, bits, group);
      const runs = [];
      for (const threads of [1, 2]) {
        const out = allocateParts(s, rows, cols);
        const status = await A.quantize({ spec: s, rows, cols, src: new Uint8Array(x.buffer), srcDtype: 'F32', out, threads });
        expect(status.nonfinite, scheme).toBe(2);
        expect(status.firstNonfinite, scheme).toBe(cols + 300);
        expect(status.scaleOverflow, scheme).toBeGreaterThan(0);
        expect(status.firstOverflowRow, scheme).toBe(4);
        runs.push(Buffer.from(out.data));
      }
      expect(Buffer.compare(runs[0]!, runs[1]!), scheme).toBe(0);
    }
  });

  it('Q8_0 ignores the importance matrix (as llama.cpp does); Q4_K and IQ4_NL follow it', async () => {
    const t = [...(await loadFloatTensors(STORIES260K)).values()].find((v) => v.shape.length === 2 && v.values.length >= 8 * 256)!;
    const cols = 256, rows = Math.floor(t.values.length / cols);
    const src = t.raw.subarray(0, rows * cols * 2);
    const weights = Float32Array.from({ length: cols }, (_, j) => 1 + (j % 7) * 3);
    const bytes = async (s: KernelSpec, w?: Float32Array) => {
      const out = allocateParts(s, rows, cols);
      await A.quantize({ spec: s, rows, cols, src, srcDtype: t.dtype as FloatDtype, out, ...(w ? { weights: w } : {}) });
      return Buffer.from(out.data);
    };
    expect(Buffer.compare(await bytes(spec('q8_0', 8, 32, 'imatrix'), weights), await bytes(spec('q8_0', 8, 32)))).toBe(0);
    expect(Buffer.compare(await bytes(spec('q4_k', 4, 256, 'imatrix'), weights), await bytes(spec('q4_k', 4, 256)))).not.toBe(0);
    expect(Buffer.compare(await bytes(spec('iq4_nl', 4, 32, 'imatrix'), weights), await bytes(spec('iq4_nl', 4, 32)))).not.toBe(0);
  });
});
