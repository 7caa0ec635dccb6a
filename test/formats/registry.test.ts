/**
 * The format registry against ggml itself: type ids from ggml.h's enum ggml_type, block sizes from the
 * block structs' layouts in ggml-common.h (their static_asserts, as arithmetic), bytes of tensors of
 * many shapes, llama.cpp's fallbacks, labels, and, for every scheme this build of the addon implements,
 * the addon's own layout.
 */
import { describe, expect, it } from 'vitest';
import { LLAMA_CPP_FTYPES, fitChoice } from '../../src/formats/gguf-mixes.js';
import {
  GGML_TYPE_NAMES,
  WEIGHT_ENCODINGS,
  encodingOfScheme,
  ggmlBitsPerWeight,
  ggmlLabel,
  ggmlSpec,
  ggmlTensorBytes,
  ggmlType,
  ggmlTypeById,
  ggmlTypeOfDtype,
  packedGroup,
  packedIntEncoding,
  packedLabel,
  packedParts,
} from '../../src/formats/types/index.js';
import { addon } from '../../src/native.js';

const QK_K = 256, HALF = 2;
/** [ggml type id, weights per block, bytes per block] as ggml.h and ggml-common.h define them. */
const GGML: Record<string, [number, number, number]> = {
  F32: [0, 1, 4],
  F16: [1, 1, 2],
  Q4_0: [2, 32, HALF + 32 / 2],
  Q4_1: [3, 32, 2 * HALF + 32 / 2],
  Q5_0: [6, 32, HALF + 4 + 32 / 2],
  Q5_1: [7, 32, 2 * HALF + 4 + 32 / 2],
  Q8_0: [8, 32, HALF + 32],
  Q2_K: [10, QK_K, 2 * HALF + QK_K / 16 + QK_K / 4],
  Q3_K: [11, QK_K, HALF + QK_K / 4 + QK_K / 8 + 12],
  Q4_K: [12, QK_K, 2 * HALF + 12 + QK_K / 2],
  Q5_K: [13, QK_K, 2 * HALF + 12 + QK_K / 2 + QK_K / 8],
  Q6_K: [14, QK_K, HALF + QK_K / 16 + (3 * QK_K) / 4],
  IQ2_XXS: [16, QK_K, HALF + (QK_K / 8) * 2],
  IQ4_NL: [20, 32, HALF + 32 / 2],
  IQ4_XS: [23, QK_K, HALF + 2 + QK_K / 64 + QK_K / 2],
  I8: [24, 1, 1],
  I16: [25, 1, 2],
  I32: [26, 1, 4],
  I64: [27, 1, 8],
  F64: [28, 1, 8],
  BF16: [30, 1, 2],
};

describe('ggml types', () => {
  it('have ggml\'s ids, block sizes and block bytes', () => {
    expect(new Set(GGML_TYPE_NAMES)).toEqual(new Set(Object.keys(GGML)));
    for (const [name, [id, blck, size]] of Object.entries(GGML)) {
      const t = ggmlType(name)!;
      expect([t.ggufId, t.blockWeights, t.blockBytes], name).toEqual([id, blck, size]);
      expect(ggmlTypeById(id)).toBe(t);
      expect(t.quantized, name).toBe(blck > 1);
    }
    expect(ggmlBitsPerWeight(ggmlType('Q4_K'))).toBe(4.5);
    expect(ggmlBitsPerWeight(ggmlType('Q6_K'))).toBe(6.5625);
    expect(ggmlBitsPerWeight(ggmlType('Q2_K'))).toBe(2.625);
    expect(ggmlTypeById(99)).toBeUndefined();
  });

  it('size tensors of every shape as ggml does, and refuse rows that are not whole blocks', () => {
    for (const [name, [, blck, size]] of Object.entries(GGML))
      for (const ne of [[256, 1], [512, 3], [3072, 8192], [256, 4, 2], [32, 7], [320, 5], [200, 2], [1, 9]]) {
        const want = ne[0]! % blck === 0 ? (ne.reduce((a, b) => a * b, 1) / blck) * size : undefined;
        expect(ggmlTensorBytes(ggmlType(name)!, ne), `${name} ${JSON.stringify(ne)}`).toBe(want);
      }
  });

  it('store each float and integer dtype as its element type', () => {
    for (const d of ['F32', 'F16', 'BF16', 'I8', 'I16', 'I32', 'I64', 'F64'] as const) expect(ggmlTypeOfDtype(d)!.name).toBe(d);
  });

  it("fall back as llama.cpp's tensor_type_fallback does, then to F16", () => {
    const fallback = Object.fromEntries(GGML_TYPE_NAMES.map((n) => [n, ggmlType(n).fallback]));
    expect(fallback).toMatchObject({ Q2_K: 'Q4_0', Q3_K: 'Q4_0', Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0', IQ4_XS: 'IQ4_NL', IQ2_XXS: 'IQ4_NL', Q4_0: null, Q8_0: null, IQ4_NL: null });
    expect(fitChoice('Q4_K', 4096)).toEqual({ type: 'Q4_K' });
    expect(fitChoice('Q4_K', 320)).toEqual({ type: 'Q5_0', wanted: 'Q4_K' });
    expect(fitChoice('Q6_K', 64)).toEqual({ type: 'Q8_0', wanted: 'Q6_K' });
    expect(fitChoice('Q4_K', 200)).toEqual({ type: 'F16', wanted: 'Q4_K' }); // 200 is not whole 32-weight blocks either
    expect(fitChoice('Q4_0', 172)).toEqual({ type: 'F16', wanted: 'Q4_0' });
  });

  it('name themselves and the method that chose their values', () => {
    expect(ggmlLabel(ggmlType('Q4_K'))).toBe('Q4_K');
    expect(ggmlLabel(ggmlType('Q4_0'), 'search')).toBe('Q4_0 search');
    expect(ggmlLabel(ggmlType('Q4_1'), 'hqq')).toBe('Q4_1 hqq');
    expect(ggmlLabel(ggmlType('IQ4_NL'), 'search')).toBe('IQ4_NL'); // the search is IQ4_NL's own method
    expect(ggmlLabel(ggmlType('IQ4_NL'), 'gptq')).toBe('IQ4_NL gptq');
    expect(ggmlSpec(ggmlType('Q5_K'))).toEqual({ scheme: 'q5_k', bits: 5, group: 256, scaleDtype: 'F16' });
    expect(ggmlSpec(ggmlType('Q5_0'), 'rtn')).toEqual({ scheme: 'q5_0', bits: 5, group: 32, scaleDtype: 'F16' });
    expect(() => ggmlSpec(ggmlType('F16'))).toThrow(/stored as it is/);
  });
});

describe('compressed-tensors ints', () => {
  it('pack codes into I32 words, a scale per group, zero points along the rows', () => {
    const spec = { scheme: 'int_asym', bits: 4, group: 32, scaleDtype: 'BF16' } as const;
    expect(packedParts(packedIntEncoding('int_asym'), spec, 10, 64)).toEqual([
      { suffix: '_packed', dtype: 'I32', shape: [10, 8] },
      { suffix: '_scale', dtype: 'BF16', shape: [10, 2] },
      { suffix: '_zero_point', dtype: 'I32', shape: [2, 2] },
    ]);
    expect(packedParts(packedIntEncoding('int_sym'), { ...spec, scheme: 'int_sym', bits: 8 }, 3, 64).map((p) => p.shape)).toEqual([[3, 16], [3, 2]]);
    expect(packedGroup(172, 32)).toBe(43);
    expect(packedGroup(64, 128)).toBe(64);
    expect(packedLabel(packedIntEncoding('int_sym'), { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'F16', method: 'gptq' }, 64)).toBe('int4 g32 sym gptq');
    expect(packedLabel(packedIntEncoding('int_asym'), { scheme: 'int_asym', bits: 8, group: 64, scaleDtype: 'F16' }, 64)).toBe('int8 row asym');
  });
});

describe('the registry and the addon', () => {
  it('names a distinct kernel scheme for every quantized encoding, and the addon lays out those it implements as the registry does', () => {
    const schemes = WEIGHT_ENCODINGS.filter((e) => e.scheme).map((e) => e.scheme!);
    expect(new Set(schemes).size).toBe(schemes.length);
    const implemented: string[] = [];
    for (const e of WEIGHT_ENCODINGS) {
      if (!e.scheme) continue;
      expect(encodingOfScheme(e.scheme)).toBe(e);
      expect(e.methods.length, e.name).toBeGreaterThan(0);
      if (e.family !== 'ggml') continue;
      const t = ggmlType(e.name)!;
      const spec = ggmlSpec(t, t.methods[0]);
      let layout;
      try {
        layout = addon().layout({ spec, cols: 4 * t.blockWeights });
      } catch (err) {
        expect((err as { code?: string }).code, `${e.name}: ${(err as Error).message}`).toBe('ERR_NATIVE_ARGUMENT'); // a scheme this build lacks
        continue;
      }
      expect(layout.error, e.name).toBeNull();
      expect(layout.dataBytesPerRow, e.name).toBe(4 * t.blockBytes);
      implemented.push(e.name);
    }
    // This build has at least the 32-weight types quantkit has always written.
    expect(implemented).toEqual(expect.arrayContaining(['Q8_0', 'Q4_0', 'Q4_1', 'IQ4_NL']));
  });

  it('has a file type for each ggml type llama.cpp files are named after', () => {
    for (const [ft, { base }] of Object.entries(LLAMA_CPP_FTYPES)) expect(ggmlType(base), ft).toBeDefined();
  });
});
