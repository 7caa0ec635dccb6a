/**
 * Whole GGUF files against llama.cpp's own code: a small synthetic Llama-shaped checkpoint whose rows are
 * multiples of 256 (test/fixtures/llama-quantize-types.json's llama-8l, written by
 * scripts/make-synthetic.ts) is written by quantkit as Q4_K_M, Q5_K_M, Q6_K and Q4_K_S (and Q4_K_M with
 * an importance matrix). For every tensor of every file: the type is the one llama-quantize gave it (the
 * recorded choices), and the bytes are what llama.cpp's ggml-quants.c (compiled from the bundled source
 * by scripts/build-ggml-reference.sh) writes for the same values, the values llama-quantize reads: the
 * bf16 GGUF quantkit writes of the same checkpoint. general.file_type is llama.cpp's. At scale, with the
 * real llama-quantize: scripts/bench/kquants-vs-llama.ts (`npm run bench -- kquants`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { toFloat32 } from '../../src/convert.js';
import { GgufReader } from '../../src/formats/gguf-container.js';
import { LLAMA_CPP_FTYPES, type LlamaCppFileType } from '../../src/formats/gguf-mixes.js';
import { imatrixValues, readImatrixFile, writeImatrixFile } from '../../src/formats/imatrix-file.js';
import { ggmlType } from '../../src/formats/types/index.js';
import { quantize } from '../../src/quantize.js';
import { expandName } from '../helpers/layer-patterns.js';
import { ROOT, STORIES260K, tempDir } from '../helpers/models.js';

const BUNDLE = join(ROOT, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = !existsSync(BUNDLE) ? `no llama.cpp source bundle at ${BUNDLE}` : !have(process.env.CC ?? 'cc') ? 'no C compiler (cc)' : !have('git') ? 'no git' : null;
if (missing) console.log(`gguf-kfile-identity: skipped, ${missing}`);

interface Run { model: string; file_type: string; pure: boolean; general_file_type: number; default_type: string; types: Record<string, string[]> }
const fixture = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'llama-quantize-types.json'), 'utf8')) as { models: Record<string, { config: Record<string, unknown> }>; runs: Run[] };
const MODEL = 'llama-8l';

/** The type llama-quantize gave each tensor of MODEL in a recorded run (1-D tensors stay F32). */
function recordedTypes(ft: LlamaCppFileType): { general: number; typeOf: (name: string, rank: number) => string } {
  const run = fixture.runs.find((r) => r.model === MODEL && r.file_type === ft && !r.pure)!;
  const named = new Map<string, string>();
  for (const [type, patterns] of Object.entries(run.types)) for (const p of patterns) for (const n of expandName(p)) named.set(n, type);
  return { general: run.general_file_type, typeOf: (name, rank) => named.get(name) ?? (rank === 1 ? 'F32' : run.default_type) };
}

/** Every tensor of a GGUF file: name, type, dims and bytes. */
async function readAll(file: string) {
  const r = await GgufReader.open(file);
  try {
    const tensors = [];
    for (const t of r.file.tensors) tensors.push({ ...t, data: await r.read(t) });
    return { kvs: r.file.kvs, tensors };
  } finally {
    await r.close();
  }
}

const ggufIn = (dir: string) => join(dir, readdirSync(dir).find((f) => f.endsWith('.gguf'))!);

describe.skipIf(missing !== null)("K-quant files equal llama.cpp's, tensor for tensor", () => {
  let dir: string, model: string, refDir: string;
  let source: Map<string, Float32Array>;

  beforeAll(async () => {
    refDir = execFileSync('bash', ['scripts/build-ggml-reference.sh'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
    dir = tempDir('quantkit-kfile-identity-');
    model = join(dir, MODEL);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(fixture.models[MODEL]!.config));
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(ROOT, 'scripts', 'make-synthetic.ts'), model, '--config', join(dir, 'config.json')], { cwd: ROOT, stdio: 'pipe' });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (!existsSync(join(model, f))) copyFileSync(join(STORIES260K, f), join(model, f));
    // What llama-quantize reads: the bf16 GGUF of the checkpoint (q/k rows in llama.cpp's order).
    await quantize(model, { bits: 4, format: 'gguf', ggufType: 'BF16', output: join(dir, 'bf16'), threads: 2 });
    source = new Map((await readAll(ggufIn(join(dir, 'bf16')))).tensors.map((t) => [t.name, toFloat32(t.data, t.type === 'BF16' ? 'BF16' : 'F32')]));
  }, 120_000); // the first run compiles ggml-quants.c (cached afterwards)

  /** Quantizes with quantkit, then compares every tensor with ggml_reference's bytes for the same values. */
  async function compare(ft: LlamaCppFileType, imatrix?: string) {
    const out = join(dir, `${ft}${imatrix ? '-imatrix' : ''}`);
    await quantize(model, { bits: 4, format: 'gguf', ggufType: ft, output: out, threads: 2, ...(imatrix ? { imatrix } : {}) });
    const file = await readAll(ggufIn(out));
    const rec = recordedTypes(ft);
    expect(Number(file.kvs.get('general.file_type')!.value)).toBe(rec.general);
    expect(rec.general).toBe(LLAMA_CPP_FTYPES[ft].id);
    const weights = imatrix ? imatrixValues(await readImatrixFile(imatrix)) : new Map<string, Float32Array>();

    const records: Buffer[] = [];
    const quantized = file.tensors.filter((t) => ggmlType(t.type).quantized);
    for (const t of file.tensors) {
      expect(t.type, t.name).toBe(rec.typeOf(t.name, t.ne.length));
      const x = source.get(t.name)!;
      if (!ggmlType(t.type).quantized) {
        expect(Buffer.from(t.data).equals(Buffer.from(x.buffer, x.byteOffset, x.byteLength)), `${t.name}: ${t.type} values`).toBe(true);
        continue;
      }
      const w = weights.get(t.name);
      records.push(Buffer.from(Int32Array.from([ggmlType(t.type).ggufId, x.length / t.ne[0]!, t.ne[0]!, w ? 1 : 0]).buffer));
      if (w) records.push(Buffer.from(w.buffer, w.byteOffset, w.byteLength));
      records.push(Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    }
    writeFileSync(join(out, 'request.bin'), Buffer.concat(records));
    execFileSync(join(refDir, 'ggml_reference'), [join(out, 'request.bin'), join(out, 'llama.bin')]);
    const llama = readFileSync(join(out, 'llama.bin'));
    let at = 0;
    for (const t of quantized) {
      const theirs = llama.subarray(at, at + t.bytes);
      const first = theirs.findIndex((v, i) => v !== t.data[i]);
      expect(first, `${ft}${imatrix ? ' imatrix' : ''}: ${t.name} (${t.type}) differs from llama.cpp's at byte ${first}`).toBe(-1);
      at += t.bytes + 4 * (t.data.length / ggmlType(t.type).blockBytes) * ggmlType(t.type).blockWeights;
    }
    expect(at).toBe(llama.length);
    return file;
  }

  for (const ft of ['Q4_K_M', 'Q5_K_M', 'Q6_K', 'Q4_K_S'] as const) it(`${ft}: every tensor's type and bytes, and the file type`, () => compare(ft), 60_000);

  it('Q4_K_M with an importance matrix: the same, with llama.cpp given the same weights', async () => {
    // An importance matrix with uneven column weights for every blk.* matrix (as llama-imatrix collects).
    const bf16 = await readAll(ggufIn(join(dir, 'bf16')));
    let s = 12345;
    const next = () => ((s = (s * 1664525 + 1013904223) >>> 0) + 0.5) / 2 ** 32;
    const entries = new Map(bf16.tensors.filter((t) => t.name.startsWith('blk.') && t.ne.length === 2).map((t) => [t.name, { sums: Float32Array.from({ length: t.ne[0]! }, () => 512 * next() ** 4), counts: [512] }]));
    const file = join(dir, 'synthetic.imatrix.gguf');
    await writeImatrixFile(file, { entries, datasets: ['synthetic'], chunkCount: 1, chunkSize: 512 });
    const withImatrix = await compare('Q4_K_M', file);
    const without = await readAll(ggufIn(join(dir, 'Q4_K_M')));
    const changed = withImatrix.tensors.filter((t, i) => !Buffer.from(t.data).equals(Buffer.from(without.tensors[i]!.data))).map((t) => t.name);
    // Every blk.* matrix has an entry and changes; token_embd and output (no entry) stay as they were.
    expect(changed.sort()).toEqual([...entries.keys()].sort());
    expect(withImatrix.kvs.get('quantize.imatrix.entries_count')!.value).toBe(entries.size);
  }, 60_000);
});
