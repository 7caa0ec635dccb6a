/**
 * `npm run bench -- vs-llama [CHECKPOINT_DIR] [--threads N] [--reps N] [--types Q4_0,Q8_0,Q4_K_M]`
 *
 * quantkit against llama.cpp's own llama-quantize on the same input, end to end, as a user runs them:
 * one process per run, page cache warm for both (the inputs are read once before every run), the same
 * thread count, runs alternated (llama-quantize, then quantkit, pair after pair) so that the noise of a
 * shared machine falls on both alike. The input is one synthetic Llama-shaped bf16 checkpoint (0.98 GB,
 * scripts/make-synthetic.ts, cached outside git) or CHECKPOINT_DIR, written once more as a bf16 GGUF by
 * quantkit (what llama-quantize reads; convert_hf_to_gguf.py would write the same tensors).
 *
 * llama-quantize: $QUANTKIT_LLAMA_QUANTIZE, else built (Release, native CPU flags) from the llama.cpp
 * source that the node-llama-cpp dev dependency bundles, into ~/.cache/quantkit/llama.cpp-<commit>/.
 *
 * Prints per type and tool: median and min seconds, input GB/s (each tool's own input bytes), peak RSS
 * (from /usr/bin/time), and the ratio of input rates per pair (min, median).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, cpus } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CACHE = process.env.QUANTKIT_BENCH_CACHE ?? join(homedir(), '.cache', 'quantkit');
const CLI = join(ROOT, 'dist', 'cli', 'quantkit.js');

/** The 0.98 GB checkpoint: Llama-shaped (GQA, 11 layers of hidden 2048 / intermediate 5504, vocab 512). */
const SYNTH_CONFIG = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 5504, num_hidden_layers: 11,
  num_attention_heads: 16, num_key_value_heads: 4, vocab_size: 512, tie_word_embeddings: false, max_position_embeddings: 2048,
  rms_norm_eps: 1e-5, rope_theta: 10000, torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 2,
};

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** llama-quantize from the environment, or built once from node-llama-cpp's bundled source. */
function llamaQuantize(): string {
  const given = process.env.QUANTKIT_LLAMA_QUANTIZE;
  if (given) {
    if (!existsSync(given)) throw new Error(`QUANTKIT_LLAMA_QUANTIZE=${given} does not exist`);
    return given;
  }
  const bundle = join(ROOT, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');
  if (!existsSync(bundle)) throw new Error(`no llama.cpp source bundle at ${bundle} (npm ci installs node-llama-cpp), and QUANTKIT_LLAMA_QUANTIZE is not set`);
  const commit = execFileSync('git', ['bundle', 'list-heads', bundle], { encoding: 'utf8' }).trim().split(/\s+/)[0]!;
  const dir = join(CACHE, `llama.cpp-${commit}`);
  const bin = join(dir, 'build', 'bin', 'llama-quantize');
  if (existsSync(bin)) return bin;
  console.log(`building llama-quantize from ${commit} into ${dir} (once; several minutes)`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const run = (cmd: string, args: string[], cwd = dir) => execFileSync(cmd, args, { cwd, stdio: 'inherit' });
  run('git', ['init', '-q', '.']);
  run('git', ['fetch', '-q', bundle, commit]);
  run('git', ['checkout', '-q', commit]);
  run('cmake', ['-S', '.', '-B', 'build', '-DCMAKE_BUILD_TYPE=Release', '-DGGML_NATIVE=ON', '-DLLAMA_CURL=OFF', '-DLLAMA_BUILD_TESTS=OFF', '-DLLAMA_BUILD_EXAMPLES=OFF', '-DLLAMA_BUILD_SERVER=OFF']);
  run('cmake', ['--build', 'build', '--target', 'llama-quantize', '-j', String(Math.min(4, cpus().length))]);
  return bin;
}

function dirBytes(dir: string, ext: string): number {
  return readdirSync(dir).filter((f) => f.endsWith(ext)).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

/** Reads every input file once, so that each run starts with the page cache warm. */
function warm(paths: string[]): void {
  for (const p of paths) spawnSync('cat', [p], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 0 });
}

/** Runs a command under /usr/bin/time: wall seconds and peak RSS (MiB). */
function timed(cmd: string, args: string[]): { seconds: number; rssMiB: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'QKRSS %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const m = /QKRSS (\d+)/.exec(r.stderr);
  return { seconds, rssMiB: m ? Number(m[1]) / 1024 : NaN };
}

export async function vsLlama(): Promise<void> {
  if (!existsSync('/usr/bin/time')) throw new Error('vs-llama measures peak RSS with /usr/bin/time (GNU time): install it (apt-get install time)');
  if (!existsSync(CLI)) throw new Error('run npm run build first (dist/cli/quantkit.js)');
  const threads = Number(arg('threads') ?? 2);
  const reps = Number(arg('reps') ?? 3);
  const types = (arg('types') ?? 'Q4_0,Q8_0,Q4_K_M').split(',');
  const positional = process.argv.slice(3).find((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
  const lq = llamaQuantize();

  let model = positional && resolve(positional);
  if (!model) {
    model = join(CACHE, 'bench', 'llama-0.98gb');
    if (!existsSync(join(model, 'config.json'))) {
      mkdirSync(join(CACHE, 'bench'), { recursive: true });
      const cfg = join(CACHE, 'bench', 'llama-0.98gb.config.json');
      writeFileSync(cfg, JSON.stringify(SYNTH_CONFIG));
      execFileSync('npx', ['tsx', join(ROOT, 'scripts', 'make-synthetic.ts'), model, '--config', cfg], { stdio: 'inherit' });
    }
  }
  const work = join(CACHE, 'bench', 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const ggufDir = join(CACHE, 'bench', `${model.split('/').pop()}-bf16-gguf`);
  if (!existsSync(ggufDir)) execFileSync(process.execPath, [CLI, 'quantize', model, '--format', 'gguf', '--gguf-type', 'BF16', '-o', ggufDir, '-q'], { stdio: 'inherit' });
  const ggufIn = join(ggufDir, readdirSync(ggufDir).find((f) => f.endsWith('.gguf'))!);
  const stInputs = readdirSync(model).filter((f) => f.endsWith('.safetensors')).map((f) => join(model, f));
  const stBytes = dirBytes(model, '.safetensors'), ggufBytes = statSync(ggufIn).size;
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  const isa = JSON.parse(execFileSync(process.execPath, [CLI, 'info', '--json'], { encoding: 'utf8' })).isa;
  console.log(`vs-llama ${new Date().toISOString()} on ${cpu} (${cpus().length} CPUs visible), quantkit kernels ${isa}, ${threads} threads, ${reps} pairs per row`);
  console.log(`input: ${model} (${(stBytes / 1e9).toFixed(2)} GB safetensors) and ${ggufIn} (${(ggufBytes / 1e9).toFixed(2)} GB bf16 GGUF); llama-quantize: ${lq}`);
  console.log('type     quantkit-format  tool            median-s  min-s   GB/s-in(median)  peak-RSS-MiB  ratio(min..median)');

  // Each quantkit row: which llama.cpp type it stands against, and the quantkit arguments. --method rtn:
  // llama-quantize without an importance matrix rounds to nearest (the CLI's default, auto, would run
  // the scale search on a model this size: better weights, another amount of work).
  const rows: { type: string; format: string; args: string[] }[] = [];
  for (const t of types) {
    rows.push({ type: t, format: 'gguf', args: ['--format', 'gguf', '--gguf-type', t, '--method', 'rtn'] });
    if (t === 'Q4_0' || t === 'Q8_0') rows.push({ type: t, format: 'safetensors', args: ['--format', 'safetensors', '--bits', t === 'Q4_0' ? '4' : '8', '--method', 'rtn'] });
  }
  for (const row of rows) {
    const llama: { seconds: number; rssMiB: number }[] = [], ours: { seconds: number; rssMiB: number }[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < reps; i++) {
      const lqOut = join(work, `llama-${row.type}.gguf`), qkOut = join(work, `quantkit-${row.type}-${row.format}`);
      warm([ggufIn]);
      const a = timed(lq, [ggufIn, lqOut, row.type, String(threads)]);
      rmSync(lqOut, { force: true });
      warm(stInputs);
      const b = timed(process.execPath, [CLI, 'quantize', model, ...row.args, '-o', qkOut, '--force', '--threads', String(threads), '-q']);
      rmSync(qkOut, { recursive: true, force: true });
      llama.push(a);
      ours.push(b);
      ratios.push(stBytes / b.seconds / (ggufBytes / a.seconds));
    }
    const line = (tool: string, fmt: string, xs: { seconds: number; rssMiB: number }[], bytes: number, ratio: string) => {
      const s = xs.map((x) => x.seconds);
      console.log(`${row.type.padEnd(8)} ${fmt.padEnd(16)} ${tool.padEnd(15)} ${median(s).toFixed(2).padStart(8)}  ${Math.min(...s).toFixed(2).padStart(5)}  ${(bytes / median(s) / 1e9).toFixed(2).padStart(15)}  ${Math.max(...xs.map((x) => x.rssMiB)).toFixed(0).padStart(12)}  ${ratio}`);
    };
    line('llama-quantize', '(gguf)', llama, ggufBytes, '');
    line('quantkit', row.format, ours, stBytes, `${Math.min(...ratios).toFixed(2)}..${median(ratios).toFixed(2)}x`);
  }
  rmSync(work, { recursive: true, force: true });
}
