/**
 * The graph's other layouts on real weights: stories260k's layers rewritten as Phi-3 stores them (fused
 * qkv_proj and gate_up_proj) and as Qwen2 does (q/k/v biases, here zero) compute the same model, so
 * their fp32 exports must generate stories260k's own greedy tokens through ONNX Runtime.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { LlamaModel } from '../../src/eval/llama.js';
import { Tokenizer } from '../../src/eval/tokenizer.js';
import { OrtDecoder } from '../../src/formats/onnx/ort-session.js';
import { quantize } from '../../src/quantize.js';
import { SafetensorsWriter, type TensorEntry } from '../../src/safetensors/writer.js';
import { STORIES260K, TINYSTORIES656K, loadFloatTensors, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-onnx-arch-');

/** stories260k under another model_type, its tensors renamed, fused or extended by `rewrite`. */
async function variant(base: string, name: string, modelType: string, rewrite: (t: Map<string, { shape: number[]; raw: Uint8Array }>, layer: string) => [string, number[], Uint8Array][]): Promise<string> {
  const src = await loadFloatTensors(base);
  const out: [string, number[], Uint8Array][] = [];
  const layers = new Set<string>();
  for (const [n, t] of src) {
    const m = /^(model\.layers\.\d+)\.(self_attn|mlp)\./.exec(n);
    if (m) layers.add(m[1]!);
    else out.push([n, t.shape, t.raw]);
  }
  for (const l of layers) out.push(...rewrite(src as never, l));
  const d = join(dir, name);
  mkdirSync(d);
  const dtype = src.values().next().value!.dtype as 'BF16' | 'F32';
  const entries: TensorEntry[] = out.map(([n, shape]) => ({ name: n, dtype, shape }));
  // A head stored only as lm_head.weight keeps its __metadata__ alias, as in tinystories-656k.
  const tied = !src.has('model.embed_tokens.weight') ? { format: 'pt', 'model.embed_tokens.weight': 'lm_head.weight' } : undefined;
  const w = await SafetensorsWriter.create(join(d, 'model.safetensors'), entries, tied);
  for (const [n, , raw] of out) await w.write(n, raw);
  await w.finish();
  const config = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8'));
  writeFileSync(join(d, 'config.json'), JSON.stringify({ ...config, model_type: modelType }));
  copyFileSync(join(base, 'tokenizer.json'), join(d, 'tokenizer.json'));
  return d;
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};

async function greedy(model: LlamaModel, prompt: number[], count: number): Promise<number[]> {
  const seq = [...prompt];
  for (let n = 0; n < count; n++) {
    const row = (await model.logits(seq)).subarray((seq.length - 1) * model.config.vocab);
    seq.push(row.indexOf(Math.max(...row)));
  }
  return seq;
}

describe('ONNX decoder layouts beyond Llama', () => {
  // stories260k (head size 8) runs the plain-operator attention, tinystories-656k (16) GroupQueryAttention with packed QKV.
  for (const [base, source] of [['stories260k', STORIES260K], ['tinystories-656k', TINYSTORIES656K]] as const)
    it(`${base} as phi3 (fused qkv_proj, gate_up_proj) and qwen2 (q/k/v biases): the exports generate the original's tokens`, async () => {
      const phi3 = await variant(source, `${base}-phi3`, 'phi3', (t, l) => {
        const g = (n: string) => t.get(`${l}.${n}.weight`)!;
        const [q, k, v, gate, up] = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'mlp.gate_proj', 'mlp.up_proj'].map(g) as { shape: number[]; raw: Uint8Array }[];
        return [
          [`${l}.self_attn.qkv_proj.weight`, [q!.shape[0]! + k!.shape[0]! + v!.shape[0]!, q!.shape[1]!], concat(q!.raw, k!.raw, v!.raw)],
          [`${l}.self_attn.o_proj.weight`, g('self_attn.o_proj').shape, g('self_attn.o_proj').raw],
          [`${l}.mlp.gate_up_proj.weight`, [2 * gate!.shape[0]!, gate!.shape[1]!], concat(gate!.raw, up!.raw)],
          [`${l}.mlp.down_proj.weight`, g('mlp.down_proj').shape, g('mlp.down_proj').raw],
        ];
      });
      const qwen2 = await variant(source, `${base}-qwen2`, 'qwen2', (t, l) => {
        const rows: [string, number[], Uint8Array][] = [];
        for (const [n, x] of t) if (n.startsWith(`${l}.self_attn.`) || n.startsWith(`${l}.mlp.`)) rows.push([n, x.shape, x.raw]);
        for (const p of ['q_proj', 'k_proj', 'v_proj']) rows.push([`${l}.self_attn.${p}.bias`, [t.get(`${l}.self_attn.${p}.weight`)!.shape[0]!], new Uint8Array(t.get(`${l}.self_attn.${p}.weight`)!.raw.length / t.get(`${l}.self_attn.${p}.weight`)!.shape[1]!)]);
        return rows;
      });
      const ckpt = await Checkpoint.open(source);
      const original = await LlamaModel.load(ckpt);
      const layers = original.config.layers;
      await ckpt.close();
      const tok = await Tokenizer.fromFile(join(source, 'tokenizer.json'));
      const prompt = [1, ...tok.encode('Once upon a time')];
      const want = await greedy(original, prompt, 20);
      for (const [name, model] of [['phi3', phi3], ['qwen2', qwen2]] as const) {
        const { output } = await quantize(model, { bits: 4, format: 'onnx', onnxDtype: 'fp32', output: join(dir, `${base}-${name}-onnx`), threads: 1 });
        const ort = await OrtDecoder.open(output);
        expect(await ort.greedy(prompt, 20), name).toEqual(want);
        await ort.close();
        // The 4-bit export writes and verifies one MatMulNBits per (fused) matrix, plus the tied head.
        const q4 = await quantize(model, { bits: 4, format: 'onnx', output: join(dir, `${base}-${name}-q4`), threads: 1 });
        expect(q4.report.totals.quantizedTensors).toBe(layers * (name === 'phi3' ? 4 : 7) + 1);
      }
    });
});
