/**
 * NaN/Inf in a tensor kept unquantized: one rule for every output format. Refused (exit 3) with the file,
 * the tensor and the first bad index, nothing published, unless --allow-non-finite copies the values, and
 * then the report lists them. (Issue: the embedding in packed safetensors and a norm weight in every
 * format were copied silently with exit 0.)
 */
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/checkpoint.js';
import { toFloat32 } from '../src/convert.js';
import { findNonFinite, unravel } from '../src/finite.js';
import type { Dtype } from '../src/safetensors/dtypes.js';
import { runCli } from './helpers/cli.js';
import { STORIES260K, tempDir } from './helpers/models.js';

const dir = tempDir('quantkit-nonfinite-');
const NAN_BF16 = 0x7fc0;
const INF_BF16 = 0x7f80;

/** A copy of stories260k (bf16) with one element of one tensor replaced. */
function damaged(name: string, tensor: string, index: number, bits: number): string {
  const d = join(dir, name);
  cpSync(STORIES260K, d, { recursive: true });
  const file = join(d, 'model.safetensors');
  const buf = readFileSync(file);
  const headerLength = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8'));
  buf.writeUInt16LE(bits, 8 + headerLength + header[tensor].data_offsets[0] + index * 2);
  writeFileSync(file, buf);
  return d;
}

const norm = damaged('nan-norm', 'model.norm.weight', 17, NAN_BF16);
const embed = damaged('inf-embed', 'model.embed_tokens.weight', 3 * 64 + 5, INF_BF16);

describe('a NaN in a norm weight (kept in every format)', () => {
  for (const format of ['safetensors', 'gguf', 'gguf-raw']) {
    it(`--format ${format}: refused with file, tensor and index; nothing published`, () => {
      const out = join(dir, `norm-${format}`);
      const r = runCli(['quantize', norm, '--format', format, '-o', out]);
      expect(r.code).toBe(3);
      expect(r.stderr).toBe(`quantkit: ${join(norm, 'model.safetensors')}: tensor 'model.norm.weight': 1 NaN/Inf value(s) in a tensor kept unquantized, the first at index [17] (element 17): refusing to copy it (--allow-non-finite copies such values as they are)\n`);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(dir).filter((n) => n.startsWith(`norm-${format}.`))).toEqual([]);
    });

    it(`--format ${format} --allow-non-finite: copied, and the report says so`, () => {
      const out = join(dir, `norm-${format}-allowed`);
      const r = runCli(['quantize', norm, '--format', format, '--allow-non-finite', '-o', out, '-q']);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(readFileSync(join(out, 'quantization-report.json'), 'utf8'));
      expect(report.non_finite).toEqual([{ tensor: 'model.norm.weight', file: join(norm, 'model.safetensors'), count: 1, first_index: [17] }]);
      expect(report.options.allowNonFinite).toBe(true);
      const kept = report.tensors.find((t: { name: string; source?: string }) => (t.source ?? t.name) === 'model.norm.weight');
      expect(kept.treatment).toBe('kept');
    });
  }

  it('the copied NaN is in the safetensors output, bit for bit', async () => {
    const ckpt = await Checkpoint.open(join(dir, 'norm-safetensors-allowed'));
    try {
      const t = ckpt.tensor('model.norm.weight')!;
      const v = toFloat32(await ckpt.read(t), t.dtype);
      expect(Number.isNaN(v[17])).toBe(true);
      expect(v.filter((x) => Number.isNaN(x))).toHaveLength(1);
    } finally {
      await ckpt.close();
    }
  });
});

describe('an Inf in the embedding', () => {
  it('packed safetensors keeps the embedding (--method rtn; auto quantizes it): refused as a kept tensor, index [row, column]', () => {
    const r = runCli(['quantize', embed, '--method', 'rtn', '-o', join(dir, 'embed-st')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/tensor 'model\.embed_tokens\.weight': 1 NaN\/Inf value\(s\) in a tensor kept unquantized, the first at index \[3, 5\] \(element 197\)/);
    expect(existsSync(join(dir, 'embed-st'))).toBe(false);
  });

  it('GGUF quantizes it: refused by the quantizer, the same exit code', () => {
    const r = runCli(['quantize', embed, '--format', 'gguf', '-o', join(dir, 'embed-gguf')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/tensor 'model\.embed_tokens\.weight': 1 NaN\/Inf weight\(s\), the first at row 3, column 5: refusing to quantize \(--keep with --allow-non-finite stores it unquantized as it is\)/);
  });

  it('--keep with --allow-non-finite stores it as it is in GGUF too', () => {
    const out = join(dir, 'embed-gguf-kept');
    const r = runCli(['quantize', embed, '--format', 'gguf-raw', '--keep', 'model.embed_tokens.weight', '--allow-non-finite', '-o', out, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'quantization-report.json'), 'utf8')).non_finite[0]).toMatchObject({ tensor: 'model.embed_tokens.weight', first_index: [3, 5] });
  });
});

describe('findNonFinite', () => {
  /** Every NaN/Inf by decoding each element: the slow, obvious answer. */
  function naive(bytes: Uint8Array, dtype: Dtype): { count: number; first: number } {
    const v = toFloat32(bytes, dtype);
    let count = 0, first = -1;
    v.forEach((x, i) => {
      if (!Number.isFinite(x) && count++ === 0) first = i;
    });
    return { count, first };
  }

  it('agrees with decoding every element, for F32, F16 and BF16, any length and alignment', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed >>> 8);
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const size = dtype === 'F32' ? 4 : 2;
      for (let trial = 0; trial < 200; trial++) {
        const n = 1 + (rand() % 67);
        const backing = new Uint8Array(n * size + 3);
        const bytes = backing.subarray(trial % 2 ? 1 : 0, (trial % 2 ? 1 : 0) + n * size); // odd offsets too
        for (let i = 0; i < bytes.length; i++) bytes[i] = rand() & 0xff;
        if (trial % 3 === 0) for (let i = 0; i < n; i++) bytes[i * size + size - 1]! &= 0x3f; // mostly finite
        expect(findNonFinite(bytes, dtype), `${dtype} n=${n}`).toEqual(naive(bytes, dtype));
      }
    }
  });

  it('F64, the 8-bit floats, and integers', () => {
    expect(findNonFinite(new Uint8Array(new Float64Array([1, 2, Infinity, NaN]).buffer), 'F64')).toEqual({ count: 2, first: 2 });
    expect(findNonFinite(Uint8Array.from([0x00, 0x7f, 0xff, 0x7e]), 'F8_E4M3')).toEqual({ count: 2, first: 1 });
    expect(findNonFinite(Uint8Array.from([0x00, 0x7c, 0x7b, 0xfe, 0x3c]), 'F8_E5M2')).toEqual({ count: 2, first: 1 });
    expect(findNonFinite(Uint8Array.from([0xff, 0xff, 0x7f, 0x7f]), 'I32')).toEqual({ count: 0, first: -1 });
  });

  it('unravel gives one index per dimension', () => {
    expect(unravel(197, [512, 64])).toEqual([3, 5]);
    expect(unravel(17, [64])).toEqual([17]);
    expect(unravel(1 * 36 + 2 * 9 + 2 * 3 + 1, [32, 4, 3, 3])).toEqual([1, 2, 2, 1]);
  });
});
