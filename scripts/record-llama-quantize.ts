/**
 * Records which ggml type llama.cpp's own llama-quantize gives every tensor of small synthetic models,
 * and the tensor bytes it writes, into test/fixtures/llama-quantize-types.json.
 * test/formats/llama-quantize-mix.test.ts then holds quantkit's planner to those choices and sizes.
 *
 *   npm run build && npx tsx scripts/record-llama-quantize.ts LLAMA_QUANTIZE [WORK_DIR]
 *
 * LLAMA_QUANTIZE: a Release build of tools/quantize from the llama.cpp that node-llama-cpp bundles
 * (node_modules/node-llama-cpp/llama/gitRelease.bundle, 80fb11a). For every model: make-synthetic writes
 * the bf16 checkpoint, quantkit writes it as a bf16 GGUF, llama-quantize quantizes that to each file type
 * (2 threads; without an importance matrix), and the project's GGUF reader reads what it wrote: each
 * tensor's type, and its bytes, checked against the file's own offsets.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { alignUp, GgufReader } from '../src/formats/gguf-container.js';
import { LLAMA_CPP_FTYPES, type LlamaCppFileType } from '../src/formats/gguf-mixes.js';
import { compressNames } from '../test/helpers/layer-patterns.js';

const [lq, work = '/tmp/quantkit-llama-quantize'] = process.argv.slice(2);
if (!lq) {
  console.error('usage: record-llama-quantize LLAMA_QUANTIZE [WORK_DIR]');
  process.exit(2);
}
const ROOT = resolve(import.meta.dirname, '..');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'llama-quantize-types.json');

const llama = (name: string, hidden: number, inter: number, layers: number, heads: number, kvHeads: number, tied: boolean) => ({
  model_type: name.startsWith('phi3') ? 'phi3' : 'llama', hidden_size: hidden, intermediate_size: inter, num_hidden_layers: layers,
  num_attention_heads: heads, num_key_value_heads: kvHeads, vocab_size: 512, tie_word_embeddings: tied, max_position_embeddings: 512,
  rms_norm_eps: 1e-5, rope_theta: 10000, torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 2,
});

const ALL: LlamaCppFileType[] = ['Q2_K', 'Q3_K_S', 'Q3_K_M', 'Q3_K_L', 'Q4_K_S', 'Q4_K_M', 'Q5_K_S', 'Q5_K_M', 'Q6_K', 'IQ4_XS', 'IQ4_NL', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0'];
const PURE: LlamaCppFileType[] = ['Q2_K', 'Q3_K_S', 'Q3_K_M', 'Q3_K_L', 'Q4_K_S', 'Q4_K_M', 'Q5_K_S', 'Q5_K_M', 'Q6_K', 'IQ4_XS', 'IQ4_NL', 'Q4_0'];
/** The 70B rule only moves attn_v's Q3_K/Q4_K to Q5_K: the file types where those occur. */
const ATTN_V_70B: LlamaCppFileType[] = ['Q2_K', 'Q3_K_S', 'Q3_K_M', 'Q4_K_S', 'Q4_K_M', 'IQ4_NL'];

/**
 * The two bundled models (rows of 64/172 and 128/384 weights: every K-quant falls back), then synthetic
 * ones: rows multiples of 256 and 8+ layers (the "more bits" layers show), GQA, odd rows, tied
 * embeddings, phi3's fused tensors, a 70B-class shape.
 */
const MODELS: { name: string; config?: Record<string, unknown>; types: LlamaCppFileType[]; pure: LlamaCppFileType[] }[] = [
  { name: 'stories260k', types: ALL, pure: [] },
  { name: 'tinystories-656k', types: ALL, pure: [] },
  { name: 'llama-8l', config: llama('llama-8l', 256, 512, 8, 4, 4, false), types: ALL, pure: [] },
  { name: 'llama-gqa-16l', config: llama('llama-gqa-16l', 256, 768, 16, 8, 2, false), types: ALL, pure: [] },
  { name: 'llama-odd-rows', config: llama('llama-odd-rows', 320, 200, 8, 5, 5, false), types: ALL, pure: PURE },
  { name: 'llama-tied', config: llama('llama-tied', 256, 512, 8, 8, 1, true), types: ALL, pure: PURE },
  { name: 'phi3-8l', config: llama('phi3-8l', 256, 512, 8, 4, 4, false), types: ALL, pure: [] },
  { name: 'llama-80l-gqa', config: llama('llama-80l-gqa', 256, 256, 80, 8, 1, false), types: ATTN_V_70B, pure: [] },
];

const COMMANDS = [
  'npx tsx scripts/make-synthetic.ts $WORK/$MODEL --config $WORK/$MODEL.config.json   # synthetic models (config: models.$MODEL.config); the bundled ones are models/$MODEL',
  'node dist/cli/quantkit.js quantize $WORK/$MODEL --format gguf --gguf-type BF16 -o $WORK/$MODEL-bf16 --force',
  '$LLAMA_QUANTIZE [--pure] $WORK/$MODEL-bf16/$MODEL-BF16.gguf $WORK/$MODEL-$TYPE.gguf $TYPE 2',
];

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 }).toString();

/** Every tensor of a GGUF file: type, dims, bytes; the bytes checked against where the next tensor starts. */
async function readTensors(file: string) {
  const r = await GgufReader.open(file);
  try {
    const { tensors, dataStart, fileSize, alignment } = r.file;
    const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
    byOffset.forEach((t, i) => {
      const end = i + 1 < byOffset.length ? byOffset[i + 1]!.offset : fileSize - dataStart;
      if (alignUp(t.offset + t.bytes, alignment) !== end) throw new Error(`${file}: ${t.name} (${t.type}, ${t.bytes} B) does not fill [${t.offset}, ${end})`);
    });
    return { tensors, fileType: Number(r.file.kvs.get('general.file_type')?.value) };
  } finally {
    await r.close();
  }
}

mkdirSync(work, { recursive: true });
const models: Record<string, unknown> = {};
const runs: unknown[] = [];
for (const m of MODELS) {
  const dir = join(work, m.name);
  if (m.config) {
    writeFileSync(`${dir}.config.json`, JSON.stringify(m.config, null, 2));
    run('npx', ['tsx', 'scripts/make-synthetic.ts', dir, '--config', `${dir}.config.json`]);
  }
  run('node', ['dist/cli/quantkit.js', 'quantize', m.config ? dir : join(ROOT, 'models', m.name), '--format', 'gguf', '--gguf-type', 'BF16', '-o', `${dir}-bf16`, '--force']);
  const input = join(`${dir}-bf16`, readdirSync(`${dir}-bf16`).find((n) => n.endsWith('.gguf'))!);
  const source = await readTensors(input);
  // Tensors by dims: {"[256,256]": ["blk.{0-7}.attn_q.weight", ...]}.
  const byDims: Record<string, string[]> = {};
  for (const t of source.tensors) (byDims[JSON.stringify(t.ne)] ??= []).push(t.name);
  models[m.name] = { ...(m.config ? { config: m.config } : { dir: `models/${m.name}` }), tensors: Object.fromEntries(Object.entries(byDims).map(([d, n]) => [d, compressNames(n)])) };
  for (const [type, pure] of [...m.types.map((t) => [t, false] as const), ...m.pure.map((t) => [t, true] as const)]) {
    const out = join(work, `${m.name}-${type}${pure ? '-pure' : ''}.gguf`);
    run(lq, [...(pure ? ['--pure'] : []), input, out, type, '2']);
    const q = await readTensors(out);
    const base = LLAMA_CPP_FTYPES[type].base;
    const types: Record<string, string[]> = {};
    const bytesByType: Record<string, number> = {};
    for (const t of q.tensors) {
      bytesByType[t.type] = (bytesByType[t.type] ?? 0) + t.bytes;
      const was = source.tensors.find((s) => s.name === t.name)!;
      if (JSON.stringify(was.ne) !== JSON.stringify(t.ne)) throw new Error(`${out}: ${t.name} changed shape`);
      // 1-D tensors (norms) keep their type: recorded only if llama-quantize changed one.
      if (t.type !== base && (t.ne.length > 1 || t.type !== was.type)) (types[t.type] ??= []).push(t.name);
    }
    for (const k of Object.keys(types)) types[k] = compressNames(types[k]!);
    runs.push({ model: m.name, file_type: type, pure, general_file_type: q.fileType, default_type: base, types, tensor_bytes: q.tensors.reduce((s, t) => s + t.bytes, 0), bytes_by_type: bytesByType });
    console.log(`${m.name} ${type}${pure ? ' --pure' : ''}: ${Object.entries(types).map(([k, v]) => `${k} x${v.length}`).join(', ') || `all ${base}`}`);
  }
}

// One line per model and per run keeps the file small and its diffs readable.
const line = (v: unknown) => JSON.stringify(v);
writeFileSync(
  FIXTURE,
  [
    '{',
    ` "about": ${line('The ggml type llama-quantize gave every tensor of small synthetic models, and the tensor bytes it wrote. A run lists the tensors whose type is not its default_type (blk.{0-3,6}.x: those layers; 1-D tensors keep F32). Written by scripts/record-llama-quantize.ts; checked by test/formats/llama-quantize-mix.test.ts.')},`,
    ` "llama_cpp": ${line('llama.cpp 80fb11a (bundled in node-llama-cpp 3.21.1), tools/quantize Release build, no importance matrix')},`,
    ` "commands": ${line(COMMANDS)},`,
    ' "models": {',
    Object.entries(models).map(([k, v]) => `  ${line(k)}: ${line(v)}`).join(',\n'),
    ' },',
    ' "runs": [',
    runs.map((r) => `  ${line(r)}`).join(',\n'),
    ' ]',
    '}',
    '',
  ].join('\n'),
);
console.log(`wrote ${FIXTURE}`);
