/**
 * End to end on the bundled real models and on synthetic checkpoints: quantize, then check the files
 * with independent readers (@huggingface/gguf, a bare safetensors parser, the test's own quantizer).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { QuantkitError } from '../../src/errors.js';
import { planQuantization } from '../../src/plan.js';
import { REPORT_FILE, quantize, type QuantizeRunOptions } from '../../src/quantize.js';
import { verifyOutput } from '../../src/verify.js';
import { headerFor, writeRaw } from '../helpers/fixtures.js';
import { decodeFloats, readSafetensorsPlain, relRmse, unpackCompressed } from '../helpers/independent-readers.js';
import { STORIES260K, TINYSTORIES656K, loadFloatTensors, tempDir } from '../helpers/models.js';
import { bf16Bits, f16Bits, q4_0, q4_1, q8_0 } from '../helpers/reference-quant.js';

const dir = tempDir();
let n = 0;
async function run(model: string, o: Omit<QuantizeRunOptions, 'output'>) {
  const output = join(dir, `out${n++}`);
  const r = await quantize(model, { ...o, output });
  return { ...r, output };
}

const MODELS = [['stories260k', STORIES260K], ['tinystories-656k', TINYSTORIES656K]] as const;

describe('GGUF container (gguf-raw): the checkpoint\'s names, ggml blocks', () => {
  for (const [label, model] of MODELS) {
    for (const [bits, mode, type] of [[4, 'sym', 'Q4_0'], [8, 'sym', 'Q8_0'], [4, 'asym', 'Q4_1']] as const) {
      it(`${label} ${type}: @huggingface/gguf reads it, blocks equal the reference quantizer, sizes equal the plan`, async () => {
        const { output, report, plan } = await run(model, { bits, mode, format: 'gguf-raw' });
        const files = readdirSync(output).sort();
        expect(files).toEqual([REPORT_FILE, `${label}-${type}.gguf`].sort());
        const path = join(output, `${label}-${type}.gguf`);
        expect(statSync(path).size).toBe(plan.files[0]!.bytes);
        expect(report.sizes.every((s) => s.predicted === s.actual)).toBe(true);

        const parsed = await gguf(path, { allowLocalFile: true });
        const md = parsed.metadata as Record<string, unknown>;
        expect(md['general.architecture']).toBe('llama');
        expect(md['general.file_type']).toBe({ Q4_0: 2, Q8_0: 7, Q4_1: 3 }[type]);
        expect(md['general.quantization_version']).toBe(2);
        expect(JSON.parse(md['quantkit.hf_config'] as string).hidden_size).toBeGreaterThan(0);
        const src = await loadFloatTensors(model);
        expect(parsed.tensorInfos.map((t) => t.name).sort()).toEqual([...src.keys()].sort());

        const buf = readFileSync(path);
        const dataStart = Math.ceil(Number(parsed.tensorDataOffset) / 32) * 32;
        const ref = { Q4_0: q4_0, Q8_0: q8_0, Q4_1: q4_1 }[type];
        let quantized = 0;
        for (const info of parsed.tensorInfos) {
          const s = src.get(info.name)!;
          expect(info.shape.map(Number)).toEqual([...s.shape].reverse());
          const cols = s.shape[s.shape.length - 1]!;
          const begin = dataStart + Number(info.offset);
          if (s.shape.length >= 2 && cols % 32 === 0) {
            expect(info.dtype).toBe({ Q4_0: 2, Q8_0: 8, Q4_1: 3 }[type]);
            const want = ref(s.values);
            expect(Buffer.compare(buf.subarray(begin, begin + want.length), want), info.name).toBe(0);
            quantized++;
          } else if (s.shape.length === 1) {
            expect(info.dtype).toBe(0); // F32
            const got = new Float32Array(buf.buffer.slice(buf.byteOffset + begin, buf.byteOffset + begin + s.values.length * 4));
            expect(Array.from(got)).toEqual(Array.from(s.values));
          } else {
            // 172-wide rows: not whole ggml blocks, kept lossless in the source dtype
            expect(info.dtype).toBe(s.dtype === 'BF16' ? 30 : 0);
            expect(Buffer.compare(buf.subarray(begin, begin + s.raw.length), s.raw)).toBe(0);
          }
        }
        expect(quantized).toBe(report.totals.quantizedTensors);
      });
    }
  }

  it('refuses options GGUF cannot store', async () => {
    await expect(run(STORIES260K, { bits: 4, format: 'gguf', groupSize: 64 })).rejects.toThrow(/--group-size must be 32/);
    await expect(run(STORIES260K, { bits: 8, format: 'gguf', mode: 'asym' })).rejects.toThrow(/no asymmetric 8-bit/);
  });
});

describe('packed safetensors (compressed-tensors pack-quantized)', () => {
  for (const [label, model] of MODELS) {
    for (const [bits, mode] of [[4, 'sym'], [4, 'asym'], [8, 'sym'], [8, 'asym']] as const) {
      it(`${label} int${bits} ${mode}: an independent unpacker reproduces the reported error`, async () => {
        const { output, report } = await run(model, { bits, mode, groupSize: 32 });
        expect(report.sizes.every((s) => s.predicted === s.actual)).toBe(true);
        const config = JSON.parse(readFileSync(join(output, 'config.json'), 'utf8'));
        const qc = config.quantization_config;
        expect(qc).toMatchObject({ quant_method: 'compressed-tensors', format: 'pack-quantized', quantization_status: 'compressed' });
        expect(config.hidden_size).toBeGreaterThan(0);
        for (const g of Object.values(qc.config_groups) as { weights: { num_bits: number; symmetric: boolean; strategy: string } }[]) {
          expect(g.weights.num_bits).toBe(bits);
          expect(g.weights.symmetric).toBe(mode === 'sym');
        }
        expect(existsSync(join(output, 'tokenizer.json'))).toBe(true);

        const { tensors, metadata } = readSafetensorsPlain(join(output, 'model.safetensors'));
        const src = await loadFloatTensors(model);
        let e2 = 0, x2 = 0;
        for (const t of report.tensors) {
          const s = src.get(t.name)!;
          if (t.treatment === 'kept') {
            expect(Buffer.compare(tensors.get(t.name)!.bytes, s.raw), t.name).toBe(0);
            continue;
          }
          expect(tensors.get(`${t.name}_packed`)!.dtype).toBe('I32');
          expect(tensors.has(`${t.name}_zero_point`)).toBe(mode === 'asym');
          expect(tensors.get(`${t.name}_scale`)!.dtype).toBe(s.dtype); // scales in the model dtype
          const u = unpackCompressed(tensors, t.name, bits);
          expect(u.shape).toEqual(s.shape);
          // The addon dequantizes in float32 (as runtimes do); this reader in double: 1e-6 relative.
          expect(Math.abs(relRmse(u.values, s.values) - t.relRmse) / t.relRmse).toBeLessThan(1e-6);
          for (let i = 0; i < u.values.length; i++) {
            e2 += (u.values[i]! - s.values[i]!) ** 2;
            x2 += s.values[i]! ** 2;
          }
        }
        expect(Math.abs(Math.sqrt(e2 / x2) - report.totals.relRmse) / report.totals.relRmse).toBeLessThan(1e-6);
        if (label === 'tinystories-656k') expect(metadata?.['model.embed_tokens.weight']).toBe('lm_head.weight');
      });
    }
  }

  it('uses the smallest divisor >= the group for 172-wide rows and says so in the plan', async () => {
    const ckpt = await Checkpoint.open(STORIES260K);
    const plan = await planQuantization(ckpt, { bits: 4 });
    const rowPlan = await planQuantization(ckpt, { bits: 4, groupSize: 128 });
    await ckpt.close();
    const down = plan.entries.find((e) => e.tensor.name === 'model.layers.0.mlp.down_proj.weight')!;
    expect(down.treatment).toMatchObject({ kind: 'quantize', spec: { group: 43 }, note: 'group 32 does not divide rows of 172: using groups of 43' });
    const embed = plan.entries.find((e) => e.tensor.name === 'model.embed_tokens.weight')!;
    expect(embed.treatment.kind).toBe('keep');
    expect(rowPlan.entries.find((e) => e.tensor.name === 'model.layers.0.mlp.down_proj.weight')!.treatment).toMatchObject({ spec: { group: 172 } });
  });

  it('splits into shards with an index under --max-shard-size, verified and re-readable', async () => {
    const { output, report } = await run(TINYSTORIES656K, { bits: 4, maxShardSize: 100_000 });
    const shards = readdirSync(output).filter((f) => f.endsWith('.safetensors')).sort();
    expect(shards.length).toBeGreaterThan(2);
    expect(shards[0]).toMatch(/^model-00001-of-0000\d\.safetensors$/);
    const index = JSON.parse(readFileSync(join(output, 'model.safetensors.index.json'), 'utf8'));
    const all = new Set<string>();
    for (const s of shards) for (const k of readSafetensorsPlain(join(output, s)).tensors.keys()) {
      expect(index.weight_map[k]).toBe(s);
      all.add(k);
    }
    expect(Object.keys(index.weight_map).length).toBe(all.size);
    expect(report.sizes.every((s) => s.predicted === s.actual)).toBe(true);
    const again = await verifyOutput(output, TINYSTORIES656K);
    expect(again.totals.relRmse).toBe(report.totals.relRmse);
  });
});

describe('accuracy on the real model (weight error, round-to-nearest)', () => {
  it('stories260k: 4-bit g32 about 0.085 relative RMSE, 8-bit about 0.006', async () => {
    const q4 = await run(STORIES260K, { bits: 4, format: 'gguf' });
    const q8 = await run(STORIES260K, { bits: 8, format: 'gguf' });
    // shared/reference/anchors.md: Q4_0 RTN g32 0.0843-0.0851, Q8_0 0.0063 (synthetic)
    expect(q4.report.totals.relRmse).toBeGreaterThan(0.08);
    expect(q4.report.totals.relRmse).toBeLessThan(0.09);
    expect(q8.report.totals.relRmse).toBeGreaterThan(0.004);
    expect(q8.report.totals.relRmse).toBeLessThan(0.008);
    const ct4 = await run(STORIES260K, { bits: 4, groupSize: 32, bitsFor: ['*embed_tokens*=4'] });
    // absmax/7.5 rule with groups of 43 for down_proj (anchors: 0.0957 over all matrices)
    expect(ct4.report.totals.relRmse).toBeGreaterThan(0.088);
    expect(ct4.report.totals.relRmse).toBeLessThan(0.1);
    const asym = await run(STORIES260K, { bits: 4, mode: 'asym' });
    const sym = await run(STORIES260K, { bits: 4, mode: 'sym' });
    expect(asym.report.totals.relRmse).toBeLessThan(sym.report.totals.relRmse);
    const g128 = await run(STORIES260K, { bits: 4, groupSize: 'row' });
    expect(g128.report.totals.relRmse).toBeGreaterThan(sym.report.totals.relRmse);
    expect(g128.report.totals.bitsPerQuantizedWeight).toBeLessThan(sym.report.totals.bitsPerQuantizedWeight);
  });
});

/** A synthetic f16/bf16/f32 checkpoint with odd shapes and awkward values. */
function syntheticModel(name: string, dtype: 'F16' | 'BF16' | 'F32', poison?: number): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const specs: { name: string; shape: number[]; gen: (i: number) => number }[] = [
    { name: 'odd.weight', shape: [3, 100], gen: () => rnd() * 0.1 },
    { name: 'prime.weight', shape: [5, 97], gen: () => rnd() },
    { name: 'zeros.weight', shape: [4, 64], gen: () => 0 },
    { name: 'const.weight', shape: [4, 64], gen: () => 0.25 },
    { name: 'outlier.weight', shape: [8, 64], gen: (i) => (i % 61 === 0 ? 300 : rnd() * 0.02) },
    { name: 'tiny.weight', shape: [2, 64], gen: () => rnd() * 1e-6 },
    { name: 'experts.weight', shape: [2, 4, 64], gen: () => rnd() },
    { name: 'conv.weight', shape: [8, 4, 3, 3], gen: () => rnd() * 0.3 },
    { name: 'norm.weight', shape: [64], gen: () => 1 + rnd() * 0.01 },
    { name: 'scalar', shape: [], gen: () => 3 },
  ];
  const size = dtype === 'F32' ? 4 : 2;
  const parts: Uint8Array[] = [];
  const tensors = specs.map((t, ti) => {
    const count = t.shape.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(count * size);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < count; i++) {
      const v = poison !== undefined && ti === 1 && i === poison ? NaN : t.gen(i);
      if (dtype === 'F32') dv.setFloat32(i * 4, v, true);
      else dv.setUint16(i * 2, dtype === 'F16' ? f16Bits(Math.fround(v)) : bf16Bits(v), true);
    }
    parts.push(bytes);
    return { name: t.name, dtype, shape: t.shape, bytes: bytes.length };
  });
  const { header } = headerFor(tensors, { format: 'pt' });
  writeRaw(join(d, 'model.safetensors'), header, Buffer.concat(parts));
  return d;
}

describe('synthetic checkpoints with odd shapes and values', () => {
  for (const dtype of ['F16', 'BF16', 'F32'] as const) {
    for (const format of ['safetensors', 'gguf-raw'] as const) {
      it(`${dtype} -> ${format}: every tensor planned, written and verified`, async () => {
        const model = syntheticModel(`syn-${dtype}-${format}`, dtype);
        const { report, plan } = await run(model, { bits: 4, format, bitsFor: ['conv*=8'] });
        expect(report.sizes.every((s) => s.predicted === s.actual)).toBe(true);
        const byName = new Map(report.tensors.map((t) => [t.name, t]));
        expect(byName.get('zeros.weight')).toMatchObject({ treatment: 'quantized', relRmse: 0, maxAbsErr: 0 });
        // absmax/7.5 maps a positive maximum to 7.5, clamped to 7: a constant group keeps 14/15 of its value.
        expect(byName.get('const.weight')!.relRmse).toBeLessThan(format === 'gguf-raw' ? 1e-3 : 0.07);
        expect(byName.get('norm.weight')!.treatment).toBe('kept');
        expect(byName.get('scalar')!.treatment).toBe('kept');
        expect(byName.get('conv.weight')!.format).toMatch(format === 'gguf-raw' ? /Q8_0|BF16|F16|F32/ : /int8/);
        expect(byName.get('experts.weight')!.treatment).toBe('quantized');
        expect(byName.get('outlier.weight')!.maxAbsErr).toBeGreaterThan(0);
        const odd = plan.entries.find((e) => e.tensor.name === 'odd.weight')!.treatment;
        if (format === 'gguf-raw') expect(odd).toMatchObject({ kind: 'keep', reason: expect.stringMatching(/not a multiple of 32/) });
        else expect(odd).toMatchObject({ kind: 'quantize', spec: { group: 50 }, note: expect.stringMatching(/groups of 50/) });
        const prime = plan.entries.find((e) => e.tensor.name === 'prime.weight')!.treatment;
        if (format === 'safetensors') expect(prime).toMatchObject({ spec: { group: 97 }, note: expect.stringMatching(/one scale per row/) });
      });
    }
  }

  it('a NaN weight fails with the file, tensor and position named, and writes nothing', async () => {
    const model = syntheticModel('nan', 'F32', 200);
    const output = join(dir, 'nan-out');
    const err = await quantize(model, { bits: 4, output }).catch((e) => e);
    expect(err).toBeInstanceOf(QuantkitError);
    expect(err.code).toBe('ERR_NONFINITE');
    expect(err.message).toContain(join(model, 'model.safetensors'));
    expect(err.message).toContain("tensor 'prime.weight'");
    expect(err.message).toContain('row 2, column 6');
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('nan-out'))).toEqual([]);
    // kept, it is refused the same way, unless allowNonFinite copies it as it is (and the report says so)
    expect((await quantize(model, { bits: 4, output, keep: ['prime.weight'] }).catch((e) => e)).code).toBe('ERR_NONFINITE');
    const kept = await quantize(model, { bits: 4, output, keep: ['prime.weight'], allowNonFinite: true });
    expect(kept.report.tensors.find((t) => t.name === 'prime.weight')!.treatment).toBe('kept');
    expect(kept.report.non_finite?.map((n) => n.tensor)).toEqual(['prime.weight']);
  });

  it('keeps the source file untouched', async () => {
    const model = syntheticModel('untouched', 'BF16');
    const before = readFileSync(join(model, 'model.safetensors'));
    await run(model, { bits: 8, format: 'gguf-raw' });
    expect(Buffer.compare(readFileSync(join(model, 'model.safetensors')), before)).toBe(0);
    expect(decodeFloats({ dtype: 'BF16', shape: [1], bytes: new Uint8Array(before.subarray(before.length - 2)) })[0]).toBe(3);
  });
});
