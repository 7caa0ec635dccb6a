/**
 * quantkit's planner against llama.cpp's own llama-quantize: for every recorded run of
 * test/fixtures/llama-quantize-types.json (the two bundled models, and small synthetic Llama and Phi-3
 * shaped ones: rows that are multiples of 256 and rows that are not, GQA and MHA, tied embeddings, 8 to
 * 80 layers; every K-quant file type, IQ4_NL/IQ4_XS, the 32-weight types, and --pure) the plan picks
 * exactly the ggml type llama-quantize picked for every tensor, predicts exactly the tensor bytes it
 * wrote, and says the same general.file_type. Synthetic checkpoints are rebuilt from the recorded
 * config.json (the tensor shapes scripts/make-synthetic.ts wrote), so no weights are needed here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { fromConfig } from '../../src/estimate/model.js';
import type { Treatment } from '../../src/formats/format.js';
import type { LlamaCppFileType } from '../../src/formats/gguf-mixes.js';
import { ggmlTypeOfScheme } from '../../src/formats/types/index.js';
import { planQuantization } from '../../src/plan.js';
import { expandName } from '../helpers/layer-patterns.js';
import { ROOT } from '../helpers/models.js';

interface Run {
  model: string;
  file_type: LlamaCppFileType;
  pure: boolean;
  general_file_type: number;
  default_type: string;
  types: Record<string, string[]>;
  tensor_bytes: number;
  bytes_by_type: Record<string, number>;
}
interface Fixture {
  llama_cpp: string;
  commands: string[];
  /** A synthetic model's config.json, or a bundled model's directory. */
  models: Record<string, { config?: Record<string, unknown>; dir?: string; tensors: Record<string, string[]> }>;
  runs: Run[];
}

const fixture = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'llama-quantize-types.json'), 'utf8')) as Fixture;

/** The ggml type a treatment stores. */
const typeOf = (t: Treatment) => (t.kind === 'quantize' ? ggmlTypeOfScheme(t.spec.scheme).name : t.outDtype);

describe("llama-quantize's per-tensor types and sizes", () => {
  it('covers every K-quant file type, --pure, GQA, tied embeddings, rows not whole blocks and a 70B-class model', () => {
    const ran = new Set(fixture.runs.map((r) => `${r.file_type}${r.pure ? ' pure' : ''}`));
    for (const t of ['Q2_K', 'Q3_K_S', 'Q3_K_M', 'Q3_K_L', 'Q4_K_S', 'Q4_K_M', 'Q5_K_S', 'Q5_K_M', 'Q6_K', 'IQ4_NL', 'Q5_0', 'Q5_1', 'Q4_0']) expect(ran.has(t), t).toBe(true);
    expect(ran.has('Q4_K_M pure')).toBe(true);
    expect(Object.values(fixture.models).filter((m) => m.dir).map((m) => m.dir)).toEqual(['models/stories260k', 'models/tinystories-656k']);
    const configs = Object.values(fixture.models).flatMap((m) => (m.config ? [m.config] : []));
    expect(configs.some((c) => c.tie_word_embeddings === true)).toBe(true);
    expect(configs.some((c) => Number(c.num_attention_heads) / Number(c.num_key_value_heads) >= 4)).toBe(true);
    expect(configs.some((c) => Number(c.hidden_size) % 256 !== 0 && Number(c.intermediate_size) % 32 !== 0)).toBe(true);
    expect(configs.some((c) => c.num_hidden_layers === 80)).toBe(true);
    expect(fixture.commands.join('\n')).toMatch(/llama-quantize|LLAMA_QUANTIZE/i);
  });

  for (const run of fixture.runs)
    it(`${run.model} ${run.file_type}${run.pure ? ' --pure' : ''}`, async () => {
      const model = fixture.models[run.model]!;
      const ckpt = model.config ? fromConfig(model.config, `${run.model}/config.json`, run.model).checkpoint : await Checkpoint.open(join(ROOT, model.dir!));
      const plan = await planQuantization(ckpt, { bits: 4, format: 'gguf', ggufType: run.file_type, pure: run.pure }).finally(() => ckpt.close());
      const byName = new Map(plan.entries.map((e) => [e.treatment.outputName!, e]));

      // The same tensors, with the same GGUF dims, as the file llama-quantize read.
      const dims = new Map(Object.entries(model.tensors).flatMap(([d, names]) => names.flatMap(expandName).map((n) => [n, JSON.parse(d) as number[]] as const)));
      expect(new Set(byName.keys())).toEqual(new Set(dims.keys()));
      for (const [name, ne] of dims) expect([...byName.get(name)!.tensor.shape].reverse(), name).toEqual(ne);

      // Every tensor's type.
      const want = new Map([...dims].map(([n, ne]) => [n, ne.length > 1 ? run.default_type : 'F32']));
      for (const [type, names] of Object.entries(run.types)) for (const n of names.flatMap(expandName)) want.set(n, type);
      const got = new Map([...byName].map(([n, e]) => [n, typeOf(e.treatment)]));
      expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));

      // The bytes llama-quantize wrote, type by type, and the file type it declared.
      const bytesByType: Record<string, number> = {};
      for (const e of plan.entries) bytesByType[typeOf(e.treatment)] = (bytesByType[typeOf(e.treatment)] ?? 0) + e.outputBytes;
      expect(bytesByType).toEqual(run.bytes_by_type);
      expect(plan.entries.reduce((s, e) => s + e.outputBytes, 0)).toBe(run.tensor_bytes);
      expect(plan.files[0]!.gguf!.find((kv) => kv.key === 'general.file_type')!.value).toBe(run.general_file_type);
    });
});
