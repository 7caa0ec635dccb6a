/**
 * The ONNX encodings and layout on real weights: MatMulNBits' bytes are the compressed-tensors kernels'
 * (zero points repacked), a row padded to whole blocks quantizes its real columns exactly as they would
 * be alone (rtn, search, asym) with padding codes that dequantize to 0 (GPTQ too), the graph declares
 * what transformers.js needs, a tied embedding shares the output head's bytes, and what cannot be
 * exported is refused by name.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { convertTensor } from '../../src/convert.js';
import { QuantkitError } from '../../src/errors.js';
import { packZeroPoints, unpackZeroPoints } from '../../src/formats/onnx/matmul-nbits.js';
import { readOnnxModel } from '../../src/formats/onnx/read-back.js';
import { type KernelSpec, addon, allocateParts } from '../../src/native.js';
import { planQuantization } from '../../src/plan.js';
import { padHessian, padRows } from '../../src/quant/row-padding.js';
import { TensorQuantizer } from '../../src/quant/tensor-quantizer.js';
import { quantize } from '../../src/quantize.js';
import { CLI, STORIES260K, TINYSTORIES656K, loadFloatTensors, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-onnx-layout-');

describe('MatMulNBits zero points', () => {
  it('pack two 4-bit codes per byte along the row (odd block counts padded) and 8-bit ones as bytes, losslessly', () => {
    const zeros = Int8Array.from({ length: 3 * 5 }, (_, i) => ((i * 7) % 16) - 8);
    const packed = packZeroPoints(zeros, 3, 5, 4);
    expect(packed.length).toBe(3 * 3);
    expect(packed[0]).toBe((zeros[0]! + 8) | ((zeros[1]! + 8) << 4));
    expect(packed[2]).toBe(zeros[4]! + 8); // last block of row 0 alone in its byte
    expect(unpackZeroPoints(packed, 3, 5, 4)).toEqual(zeros);
    const z8 = Int8Array.from({ length: 12 }, (_, i) => i * 21 - 128);
    expect(unpackZeroPoints(packZeroPoints(z8, 3, 4, 8), 3, 4, 8)).toEqual(z8);
  });
});

describe('rows padded to whole blocks', () => {
  // stories260k's down_proj input is 172 wide: five blocks of 32 and 12 columns padded to a sixth.
  const quantizeRows = async (spec: KernelSpec, src: Uint8Array, rows: number, cols: number, weights?: Float32Array) => {
    const parts = allocateParts(spec, rows, cols);
    await addon().quantize({ spec, rows, cols, src, srcDtype: 'F32', out: parts, ...(weights ? { weights } : {}) });
    return parts;
  };
  for (const [scheme, method] of [['int_sym', 'rtn'], ['int_asym', 'rtn'], ['int_sym', 'search'], ['int_asym', 'search']] as const)
    it(`${scheme} ${method}: the real columns get the codes and scales they get alone, padding codes decode to 0`, async () => {
      const t = (await loadFloatTensors(STORIES260K)).get('model.layers.0.mlp.down_proj.weight')!;
      const [rows, cols] = t.shape as [number, number];
      const f32 = convertTensor(t.raw, 'BF16', 'F32');
      const spec: KernelSpec = { scheme, bits: 4, group: 32, scaleDtype: 'F32', ...(method === 'search' ? { method } : {}) };
      const padded = await quantizeRows(spec, padRows(f32, 'F32', rows, 192), rows, 192, method === 'search' ? new Float32Array(192).fill(1) : undefined);
      // The same rows cut in two: 160 columns in blocks of 32, then the last 12 as one group.
      const cut = (from: number, to: number) => padRows(new Uint8Array(Float32Array.from({ length: rows * (to - from) }, (_, i) => new Float32Array(f32.buffer)[Math.floor(i / (to - from)) * cols + from + (i % (to - from))]!).buffer), 'F32', rows, to - from);
      const head = await quantizeRows(spec, cut(0, 160), rows, 160);
      const tail = await quantizeRows({ ...spec, group: 12 }, cut(160, 172), rows, 12);
      const scales = new Float32Array(padded.scales!.buffer, padded.scales!.byteOffset, rows * 6);
      const headScales = new Float32Array(head.scales!.buffer, head.scales!.byteOffset, rows * 5);
      const tailScales = new Float32Array(tail.scales!.buffer, tail.scales!.byteOffset, rows);
      const code = (d: Uint8Array, rowBytes: number, r: number, k: number) => (d[r * rowBytes + (k >> 1)]! >> ((k & 1) * 4)) & 0xf;
      for (let r = 0; r < rows; r++) {
        for (let b = 0; b < 5; b++) expect(scales[r * 6 + b]).toBe(headScales[r * 5 + b]);
        expect(scales[r * 6 + 5]).toBe(tailScales[r]);
        if (scheme === 'int_asym') {
          for (let b = 0; b < 5; b++) expect(padded.zeros![r * 6 + b]).toBe(head.zeros![r * 5 + b]);
          expect(padded.zeros![r * 6 + 5]).toBe(tail.zeros![r]);
        }
        for (let k = 0; k < 160; k++) expect(code(padded.data, 96, r, k)).toBe(code(head.data, 80, r, k));
        for (let k = 0; k < 12; k++) expect(code(padded.data, 96, r, 160 + k)).toBe(code(tail.data, 8, r, k));
        const zeroCode = 8 + (scheme === 'int_asym' ? padded.zeros![r * 6 + 5]! : 0);
        for (let k = 172; k < 192; k++) expect(code(padded.data, 96, r, k)).toBe(zeroCode);
      }
    });

  it('gptq: statistics padded alike, padding codes decode to exactly 0', async () => {
    const name = 'model.layers.1.mlp.down_proj.weight';
    const t = (await loadFloatTensors(STORIES260K)).get(name)!;
    const [rows, cols] = t.shape as [number, number];
    // A Hessian from the weights' own columns (any positive semi-definite matrix will do).
    const w = t.values;
    const h = new Float32Array(cols * cols);
    for (let r = 0; r < rows; r++) for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) h[i * cols + j]! += w[r * cols + i]! * w[r * cols + j]!;
    const spec: KernelSpec = { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'F32', method: 'gptq' };
    const parts = allocateParts(spec, rows, 192);
    const calibration = { hessians: new Map([[name, h]]), settings: { samples: 1, length: 2, seed: 0, damp: 0.1 } } as never;
    await new TensorQuantizer(new Map(), calibration).quantize({ name, spec, rows, cols: 192, src: padRows(t.raw, 'BF16', rows, 192), srcDtype: 'BF16', out: parts });
    const out = new Float32Array(rows * 192);
    await addon().dequantize({ spec, rows, cols: 192, parts, out });
    for (let r = 0; r < rows; r++) for (let k = 172; k < 192; k++) expect(out[r * 192 + k]).toBe(0);
    const padded = padHessian(h, 192);
    expect(padded[171 * 192 + 171]).toBe(h[171 * cols + 171]);
    expect(padded[180 * 192 + 180]).toBeCloseTo(Array.from({ length: cols }, (_, j) => h[j * cols + j]!).reduce((a, b) => a + b) / cols, 3);
  });
});

describe('the exported graph', () => {
  it('declares fixed KV heads and head size, a named past length, and keeps shape constants inside the .onnx', async () => {
    const r = await quantize(STORIES260K, { bits: 4, format: 'onnx', output: join(dir, 'stories-q4'), threads: 1 });
    const m = await readOnnxModel(join(r.output, 'onnx', 'model_q4.onnx'));
    const g = m.graph;
    expect(m.opsetImport.map((o) => [o.domain ?? '', o.version])).toEqual([['', 21], ['com.microsoft', 1]]);
    expect(g.input.map((i) => i.name).slice(0, 3)).toEqual(['input_ids', 'attention_mask', 'past_key_values.0.key']);
    expect(g.input[2]!.type.tensorType.shape.dim).toEqual([{ dimParam: 'batch_size' }, { dimValue: 4 }, { dimParam: 'past_sequence_length' }, { dimValue: 8 }]);
    expect(g.output.map((o) => o.name).slice(0, 3)).toEqual(['logits', 'present.0.key', 'present.0.value']);
    for (const t of g.initializer) expect(t.dataLocation === 1, t.name).toBe(!t.name.startsWith('/model/constants') && !t.name.startsWith('/model/attention') && !/\/attn\//.test(t.name));
    // down_proj: K = 172 in six blocks of 32 (the last padded).
    const down = g.node.find((n) => n.opType === 'MatMulNBits' && n.input[1] === 'model.layers.0.mlp.down_proj.weight.qweight')!;
    expect(Object.fromEntries(down.attribute!.map((a) => [a.name, a.i]))).toEqual({ K: 172, N: 64, bits: 4, block_size: 32 });
    expect(g.initializer.find((t) => t.name === down.input[1])!.dims).toEqual([64, 6, 16]);
    // The tied embedding (stored as model.embed_tokens.weight) is read by GatherBlockQuantized and by the head's MatMulNBits from the same bytes.
    const where = (n: string) => g.initializer.find((t) => t.name === n)!.externalData;
    const gather = g.node.find((n) => n.opType === 'GatherBlockQuantized')!;
    const head = g.node.find((n) => n.opType === 'MatMulNBits' && n.input[1] === 'model.embed_tokens.weight.qweight')!;
    expect(gather.input[0]).toBe('model.embed_tokens.weight.gather.qweight');
    expect(where(gather.input[0]!)).toEqual(where(head.input[1]!));
    expect(where(gather.input[2]!)).toEqual(where(head.input[2]!));
    expect(r.plan.entries.find((e) => e.tensor.name === 'model.layers.0.mlp.down_proj.weight')!.treatment).toMatchObject({ transform: { kind: 'pad-rows', cols: 192 }, label: 'MatMulNBits int4 b32 sym' });
  });

  it('plan and --dry-run predict the bytes written; quantkit verify reads the folder back', async () => {
    const out = join(dir, 'tiny-q4f16');
    const run = promisify(execFile);
    const dry = JSON.parse((await run(process.execPath, [CLI, 'quantize', '--format', 'onnx', '--onnx-dtype', 'q4f16', '--asym', TINYSTORIES656K, '-o', out, '--dry-run', '--json'])).stdout);
    await run(process.execPath, [CLI, 'quantize', '--format', 'onnx', '--onnx-dtype', 'q4f16', '--asym', TINYSTORIES656K, '-o', out, '--threads', '1']);
    const v = JSON.parse((await run(process.execPath, [CLI, 'verify', out, '--against', TINYSTORIES656K, '--json'])).stdout);
    expect(v.format).toBe('onnx');
    const written = Object.fromEntries(v.files.map((f: { name: string; bytes: number }) => [f.name, f.bytes]));
    const planned = dry.files ?? dry.plan?.files;
    for (const f of planned) expect(written[f.name], f.name).toBe(f.bytes);
    expect(v.tensors.find((t: { name: string }) => t.name === 'lm_head.weight').format).toBe('MatMulNBits int4 b32 asym');
    expect(v.totals.quantizedTensors).toBe(15); // 2 layers x 7 projections + the tied head/embedding
  });

  it('refuses architectures, block sizes and methods it cannot export', async () => {
    const ckpt = await Checkpoint.open(STORIES260K);
    const err = async (p: Promise<unknown>) => p.then(() => null, (e: QuantkitError) => e);
    expect(await err(planQuantization(ckpt, { bits: 4, format: 'onnx', groupSize: 48 }))).toMatchObject({ code: 'ERR_USAGE', message: expect.stringContaining('power of two') });
    expect(await err(planQuantization(ckpt, { bits: 4, format: 'onnx', groupSize: 'row' }))).toMatchObject({ code: 'ERR_USAGE' });
    expect(await err(planQuantization(ckpt, { bits: 4, format: 'onnx', quantMethod: 'iq4nl' }))).toMatchObject({ code: 'ERR_USAGE' });
    expect(await err(planQuantization(ckpt, { bits: 4, format: 'safetensors', onnxDtype: 'q4' }))).toMatchObject({ code: 'ERR_USAGE' });
    await ckpt.close();
    const gpt2 = Checkpoint.fromShapes('gpt2', { model_type: 'gpt2', n_embd: 64, n_layer: 1, n_head: 4, vocab_size: 100, n_positions: 64 }, [{ name: 'transformer.wte.weight', dtype: 'F32', shape: [100, 64], bytes: 25600 }]);
    expect(await err(planQuantization(gpt2, { bits: 4, format: 'onnx' }))).toMatchObject({ code: 'ERR_PLAN', message: expect.stringContaining('supported: llama, mistral, qwen2, phi3') });
    const odd = Checkpoint.fromShapes('odd', { model_type: 'llama', hidden_size: 64, num_hidden_layers: 1, num_attention_heads: 8, intermediate_size: 128, vocab_size: 100 }, [{ name: 'model.layers.0.self_attn.rotary_emb.inv_freq', dtype: 'F32', shape: [4], bytes: 16 }]);
    expect(await err(planQuantization(odd, { bits: 4, format: 'onnx' }))).toMatchObject({ code: 'ERR_PLAN', tensor: 'model.layers.0.self_attn.rotary_emb.inv_freq' });
    const headless = Checkpoint.fromShapes('headless', { model_type: 'llama', hidden_size: 64, num_hidden_layers: 1, num_attention_heads: 8, intermediate_size: 128, vocab_size: 100, tie_word_embeddings: false }, [{ name: 'model.norm.weight', dtype: 'F32', shape: [64], bytes: 256 }]);
    expect(await err(planQuantization(headless, { bits: 4, format: 'onnx' }))).toMatchObject({ code: 'ERR_PLAN', message: expect.stringContaining('model.embed_tokens.weight') });
  });
});
