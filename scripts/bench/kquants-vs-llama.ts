/**
 * quantkit's K-quant GGUF files against the real llama-quantize at scale: same checkpoint, same threads,
 * side by side (a benchmark, not a test; figures go to docs/benchmarks.md).
 *
 *   npm run build && npm run bench -- kquants MODEL_DIR [--types Q4_K_M,Q6_K] [--threads 2] [--runs 3] [--work DIR] [--no-run]
 *
 * $QUANTKIT_LLAMA_QUANTIZE names llama-quantize (a Release build of the llama.cpp that node-llama-cpp
 * bundles). quantkit writes MODEL_DIR as a bf16 GGUF (llama-quantize's input, as people convert with
 * convert_hf_to_gguf.py); then per file type and run: llama-quantize on that GGUF, and quantkit on the
 * bf16 safetensors (verification on, as it always is), each timed as a whole process with its peak RSS
 * (/usr/bin/time). Both read the same weights (the same bytes of bf16 tensors): GB/s is those bytes per
 * second. Every tensor of the two outputs is compared (type and bytes) and general.file_type too; then
 * llama.cpp, through node-llama-cpp, loads quantkit's file and generates a few tokens (--no-run skips it).
 * A checkpoint without tokenizer.json (scripts/make-synthetic.ts writes none for Phi-3-mini's vocab) gets
 * the bundled stories260k tokenizer in a work copy of the folder (weights linked, not copied): llama.cpp
 * needs one to load the file, and its ids fit any larger vocab.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GgufReader } from '../../src/formats/gguf-container.js';
import { LLAMA_CPP_FTYPES, type LlamaCppFileType } from '../../src/formats/gguf-mixes.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const args = process.argv.slice(3);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : fallback;
};
const model = args.find((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1]!.startsWith('--')));
const lq = process.env.QUANTKIT_LLAMA_QUANTIZE;
if (!model || !lq) {
  console.error('usage: QUANTKIT_LLAMA_QUANTIZE=llama-quantize npm run bench -- kquants MODEL_DIR [--types Q4_K_M] [--threads 2] [--runs 3] [--work DIR] [--no-run]');
  process.exit(2);
}
const types = flag('--types', 'Q4_K_M').split(',') as LlamaCppFileType[];
const threads = Number(flag('--threads', '2'));
const runs = Number(flag('--runs', '3'));
const work = resolve(flag('--work', '/tmp/quantkit-kquants-bench'));
const CLI = join(ROOT, 'dist', 'cli', 'quantkit.js');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs a command under /usr/bin/time: wall seconds and peak RSS (bytes). */
function timed(cmd: string, argv: string[]): { seconds: number; rss: number } {
  const stats = join(work, 'time.txt');
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', stats, cmd, ...argv], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const [e, m] = readFileSync(stats, 'utf8').trim().split('\n').pop()!.split(' ');
  return { seconds: Number(e), rss: Number(m) * 1024 };
}

/** The model folder quantkit reads: MODEL_DIR itself, or a linked copy with the bundled tokenizer. */
function modelWithTokenizer(dir: string): string {
  if (existsSync(join(dir, 'tokenizer.json'))) return dir;
  // Not named after the model: llama.cpp gives a model whose general.name says phi3 Phi-3's special-token
  // attributes, which look up tokens ("<|endoftext|>") the bundled tokenizer does not have.
  const copy = join(work, 'synthetic-with-bundled-tokenizer');
  rmSync(copy, { recursive: true, force: true });
  mkdirSync(copy, { recursive: true });
  for (const f of readdirSync(dir)) symlinkSync(join(dir, f), join(copy, f));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(ROOT, 'models', 'stories260k', f), join(copy, f));
  return copy;
}

const ggufIn = (dir: string) => join(dir, readdirSync(dir).find((f) => f.endsWith('.gguf'))!);

/** Tensor-by-tensor comparison of two GGUF files: names, types, bytes; and their file types. */
async function compareFiles(a: string, b: string): Promise<{ tensors: number; identical: number; differing: string[]; fileTypes: [number, number] }> {
  const ra = await GgufReader.open(a), rb = await GgufReader.open(b);
  try {
    const byName = new Map(rb.file.tensors.map((t) => [t.name, t]));
    const differing: string[] = [];
    const chunk = 64 << 20;
    const ba = new Uint8Array(chunk), bb = new Uint8Array(chunk);
    for (const ta of ra.file.tensors) {
      const tb = byName.get(ta.name);
      if (!tb || tb.type !== ta.type || tb.bytes !== ta.bytes) {
        differing.push(`${ta.name} (${ta.type} vs ${tb ? tb.type : 'missing'})`);
        continue;
      }
      for (let at = 0; at < ta.bytes; at += chunk) {
        const n = Math.min(chunk, ta.bytes - at);
        await ra.readRange(ta, at, ba.subarray(0, n));
        await rb.readRange(tb, at, bb.subarray(0, n));
        if (!Buffer.from(ba.buffer, 0, n).equals(Buffer.from(bb.buffer, 0, n))) {
          differing.push(`${ta.name} (${ta.type}) from byte ${at}`);
          break;
        }
      }
    }
    for (const t of rb.file.tensors) if (!ra.file.tensors.some((x) => x.name === t.name)) differing.push(`${t.name} only in ${b}`);
    const ft = (r: GgufReader) => Number(r.file.kvs.get('general.file_type')?.value ?? -1);
    return { tensors: ra.file.tensors.length, identical: ra.file.tensors.length - differing.length, differing, fileTypes: [ft(ra), ft(rb)] };
  } finally {
    await ra.close();
    await rb.close();
  }
}

mkdirSync(work, { recursive: true });
const src = modelWithTokenizer(resolve(model));
const sourceBytes = readdirSync(src).filter((f) => f.endsWith('.safetensors')).reduce((s, f) => s + statSync(join(src, f)).size, 0);
const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`kquants vs llama-quantize: ${src} (${(sourceBytes / 1e9).toFixed(2)} GB bf16 safetensors), ${threads} threads, ${runs} runs, ${cpu}`);
console.log(`llama-quantize: ${lq}`);

const bf16Dir = join(work, 'bf16');
if (!existsSync(bf16Dir) || !readdirSync(bf16Dir).some((f) => f.endsWith('.gguf'))) {
  console.log('writing the bf16 GGUF llama-quantize reads ...');
  execFileSync(process.execPath, [CLI, 'quantize', src, '--format', 'gguf', '--gguf-type', 'BF16', '-o', bf16Dir, '--force', '--threads', String(threads)], { stdio: 'inherit' });
}
const bf16 = ggufIn(bf16Dir);

console.log('\ntype     tool            run  seconds   GB/s  peak RSS');
for (const ft of types) {
  const llamaOut = join(work, `llama-${ft}.gguf`), oursDir = join(work, `quantkit-${ft}`);
  const t: Record<'llama' | 'quantkit', { seconds: number; rss: number }[]> = { llama: [], quantkit: [] };
  for (let i = 0; i < runs; i++) {
    // Alternate the order so that neither tool always runs on a warmer page cache.
    const order = i % 2 === 0 ? (['llama', 'quantkit'] as const) : (['quantkit', 'llama'] as const);
    for (const tool of order) {
      const r = tool === 'llama'
        ? timed(lq, [bf16, llamaOut, ft, String(threads)])
        : timed(process.execPath, [CLI, 'quantize', src, '--format', 'gguf', '--gguf-type', ft, '--method', 'rtn', '-o', oursDir, '--force', '--threads', String(threads)]); // llama.cpp's own quantizer, as llama-quantize without an imatrix
      t[tool].push(r);
      console.log(`${ft.padEnd(8)} ${(tool === 'llama' ? 'llama-quantize' : 'quantkit').padEnd(15)} ${String(i + 1).padStart(3)}  ${r.seconds.toFixed(1).padStart(7)}  ${(sourceBytes / r.seconds / 1e9).toFixed(3).padStart(5)}  ${(r.rss / 2 ** 30).toFixed(2)} GiB`);
    }
  }
  const min = (tool: 'llama' | 'quantkit') => Math.min(...t[tool].map((x) => x.seconds));
  const med = (tool: 'llama' | 'quantkit') => median(t[tool].map((x) => x.seconds));
  const rss = (tool: 'llama' | 'quantkit') => Math.max(...t[tool].map((x) => x.rss));
  const cmp = await compareFiles(ggufIn(oursDir), llamaOut);
  console.log(`\n${ft}: llama-quantize min ${min('llama').toFixed(1)} s / median ${med('llama').toFixed(1)} s (${(sourceBytes / min('llama') / 1e9).toFixed(3)} GB/s best), peak RSS ${(rss('llama') / 2 ** 30).toFixed(2)} GiB`);
  console.log(`${ft}: quantkit       min ${min('quantkit').toFixed(1)} s / median ${med('quantkit').toFixed(1)} s (${(sourceBytes / min('quantkit') / 1e9).toFixed(3)} GB/s best), peak RSS ${(rss('quantkit') / 2 ** 30).toFixed(2)} GiB`);
  console.log(`${ft}: speed ratio quantkit/llama-quantize: ${(min('llama') / min('quantkit')).toFixed(2)}x (min), ${(med('llama') / med('quantkit')).toFixed(2)}x (median); target >= 5x: ${min('llama') / min('quantkit') >= 5 ? 'MET' : 'NOT MET'}`);
  console.log(`${ft}: tensors byte-identical: ${cmp.identical}/${cmp.tensors}${cmp.differing.length ? `; differing: ${cmp.differing.slice(0, 10).join(', ')}` : ''}; general.file_type quantkit ${cmp.fileTypes[0]}, llama-quantize ${cmp.fileTypes[1]} (llama.cpp's id for ${ft}: ${LLAMA_CPP_FTYPES[ft].id})`);
  if (!args.includes('--no-run')) {
    const r = spawnSync(process.execPath, [join(ROOT, 'test', 'helpers', 'llama-run.mjs'), 'generate', ggufIn(oursDir), JSON.stringify({ prompt: 'Once upon a time', maxTokens: 4 })], { encoding: 'utf8' });
    console.log(`${ft}: llama.cpp (node-llama-cpp) on quantkit's file: ${r.status === 0 ? r.stdout.trim().split('\n').pop() : `FAILED (${r.status}): ${r.stderr.slice(-500)}`}`);
  }
}
