/**
 * Benchmarks (not tests). Figures go to docs/benchmarks.md.
 *   npm run bench                      kernels (1 and 2 threads) and the bundled models end to end
 *   npm run bench -- scale DIR         end to end on a large checkpoint (scripts/make-synthetic.ts)
 *   npm run bench -- gptq              GPTQ's factorisation and column loop at Phi-3-mini widths
 *   npm run bench -- vs-llama [DIR]    end to end against llama.cpp's llama-quantize (scripts/bench/vs-llama.ts)
 *   npm run bench -- kquants DIR       K-quant GGUF files vs llama-quantize (scripts/bench/kquants-vs-llama.ts)
 * Every figure comes with the ISA, threads, bytes, seconds, GB/s and its ratio to memcpy measured
 * in the same run (this machine is shared and noisy: compare ratios, not absolute numbers).
 */
import { randomBf16 } from './random-bf16.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addon, allocateParts, type KernelSpec } from '../src/native.js';

const A = addon();
const [mode, scaleDir] = process.argv.slice(2);
const gb = (n: number) => (n / 1e9).toFixed(2);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** memcpy bandwidth (bytes copied per second) on a buffer far larger than the caches. */
function memcpyRate(bytes: number): number {
  const a = Buffer.alloc(bytes, 1), b = Buffer.alloc(bytes, 2);
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = process.hrtime.bigint();
    a.copy(b);
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return bytes / median(times);
}


async function kernels(copy: number, only?: RegExp) {
  const rows = 8192, cols = 4096;
  const src = randomBf16(rows * cols);
  const info = A.info();
  console.log(`kernels: isa ${info.isa} (available: ${info.available.join(', ')}), input ${rows}x${cols} bf16 = ${gb(src.length)} GB; memcpy ${gb(copy)} GB/s`);
  console.log('scheme                threads  seconds  GB/s(bf16 in)  per core  ratio-to-memcpy');
  const specs: [string, KernelSpec][] = [
    ['Q4_0 (ggml)', { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16' }],
    ['Q8_0 (ggml)', { scheme: 'q8_0', bits: 8, group: 32, scaleDtype: 'F16' }],
    ['Q4_1 (ggml)', { scheme: 'q4_1', bits: 4, group: 32, scaleDtype: 'F16' }],
    ['int4 g32 sym', { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'BF16' }],
    ['int8 g32 sym', { scheme: 'int_sym', bits: 8, group: 32, scaleDtype: 'BF16' }],
    ['int4 g128 asym', { scheme: 'int_asym', bits: 4, group: 128, scaleDtype: 'BF16' }],
    // --method search / iq4nl (column importance given, as quantize passes it)
    ['Q4_0 search', { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' }],
    ['IQ4_NL search', { scheme: 'iq4_nl', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' }],
    ['Q8_0 search', { scheme: 'q8_0', bits: 8, group: 32, scaleDtype: 'F16', method: 'search' }],
    ['int4 g32 search', { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'BF16', method: 'search' }],
    ['Q4_1 search', { scheme: 'q4_1', bits: 4, group: 32, scaleDtype: 'F16', method: 'search' }],
    ['int4 g128 asym search', { scheme: 'int_asym', bits: 4, group: 128, scaleDtype: 'BF16', method: 'search' }],
  ];
  const weights = Float32Array.from({ length: cols }, (_, i) => 0.5 + ((i * 2654435761) % 1000) / 1000);
  for (const [label, spec] of specs) {
    if (only && !only.test(label)) continue;
    const out = allocateParts(spec, rows, cols);
    for (const threads of [1, 2]) {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = process.hrtime.bigint();
        await A.quantize({ spec, rows, cols, src, srcDtype: 'BF16', out, threads, weights: spec.method === 'search' ? weights : undefined });
        times.push(Number(process.hrtime.bigint() - t) / 1e9);
      }
      const sec = median(times), rate = src.length / sec;
      console.log(`${label.padEnd(21)} ${String(threads).padStart(7)}  ${sec.toFixed(4)}  ${gb(rate).padStart(13)}  ${gb(rate / threads).padStart(8)}  ${(rate / copy).toFixed(3).padStart(15)}`);
    }
  }
}

/**
 * GPTQ's two costs at the widths of Phi-3-mini (hidden 3072; down_proj's 8192 is extrapolated, n^3):
 * the factor of a cols x cols Hessian (once per distinct layer input) and the column loop (rows * cols^2
 * / 2 multiply-adds per matrix), with a correlated Hessian from random "activations".
 */
async function gptq() {
  console.log('GPTQ (--method gptq): factor once per layer input, then the column loop per matrix');
  console.log('cols  factor s (2 threads)  loop 1024 rows: threads  seconds  MB/s(bf16 in)  G multiply-adds/s');
  for (const cols of [1024, 3072]) {
    const tokens = 256, X = new Float32Array(tokens * cols);
    let s = 1;
    const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
    for (let t = 0; t < tokens; t++) {
      const shared = r();
      for (let j = 0; j < cols; j++) X[t * cols + j] = r() + 0.5 * shared;
    }
    const H = new Float32Array(cols * cols);
    for (let t = 0; t < tokens; t++)
      for (let i = 0; i < cols; i++) {
        const xi = X[t * cols + i]!;
        for (let j = 0; j < cols; j++) H[i * cols + j]! += xi * X[t * cols + j]!;
      }
    const factor = new Float64Array(cols * cols);
    let t0 = process.hrtime.bigint();
    await A.gptqFactor({ hessian: H, cols, damp: 0.1, out: factor, threads: 2 });
    const fsec = Number(process.hrtime.bigint() - t0) / 1e9;
    const rows = 1024, src = randomBf16(rows * cols);
    const spec: KernelSpec = { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16', method: 'gptq' };
    const out = allocateParts(spec, rows, cols);
    for (const threads of [1, 2]) {
      t0 = process.hrtime.bigint();
      await A.gptqQuantize({ spec, rows, cols, src, srcDtype: 'BF16', out, factor, threads });
      const sec = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(`${String(cols).padStart(4)}  ${fsec.toFixed(2).padStart(20)}  ${String(threads).padStart(23)}  ${sec.toFixed(2).padStart(7)}  ${(src.length / sec / 1e6).toFixed(1).padStart(13)}  ${((rows * cols * cols) / 2 / sec / 1e9).toFixed(2).padStart(17)}`);
    }
  }
}

async function endToEnd(models: string[], runs: number, copy: number) {
  const dir = mkdtempSync(join(tmpdir(), 'quantkit-bench-'));
  try {
    console.log('\nend to end (page cache to disk; plan, write, fsync, verify, report):');
    console.log('(write = reading, quantizing and writing every tensor to the page cache, as llama-quantize does;');
    console.log(' total = the whole run: process start, write, fsync, re-reading and verifying every tensor, report)');
    console.log('model                      format       bits threads   MB-in  write-s  GB/s   total-s  GB/s  ratio-to-memcpy  peak-RSS');
    for (const model of models) {
      for (const [format, bits] of [['gguf', 4], ['safetensors', 4], ['gguf', 8]] as const) {
        for (const threads of [1, 2]) {
          const times: number[] = [];
          let bytes = 0;
          let rss = 0;
          const writes: number[] = [];
          for (let i = 0; i < runs; i++) {
            // A child process per run, so that peak RSS is this run's alone.
            const t = process.hrtime.bigint();
            const outDir = join(dir, 'o');
            const res = execFileSync(process.execPath, ['-e', `
              import('${join(process.cwd(), 'dist', 'index.js')}').then(async ({ quantize }) => {
                const t0 = performance.now();
                let written = 0;
                const r = await quantize(${JSON.stringify(model)}, { bits: ${bits}, format: '${format}', output: ${JSON.stringify(outDir)}, force: true, threads: ${threads},
                  onProgress: (p) => { if (p.phase === 'quantize' && p.done === p.total && !written) written = performance.now() - t0; } });
                console.log(JSON.stringify({ bytes: r.plan.sourceBytes, rss: process.resourceUsage().maxRSS, write: written / 1000 }));
              })`], { encoding: 'utf8' });
            times.push(Number(process.hrtime.bigint() - t) / 1e9);
            const j = JSON.parse(res.trim().split('\n').pop()!);
            bytes = j.bytes;
            rss = Math.max(rss, j.rss);
            writes.push(j.write);
            rmSync(outDir, { recursive: true, force: true });
          }
          const sec = median(times);
          const w = median(writes);
          console.log(`${model.slice(-26).padEnd(26)} ${format.padEnd(12)} ${String(bits).padStart(4)} ${String(threads).padStart(7)}  ${(bytes / 1e6).toFixed(1).padStart(7)}  ${w.toFixed(2).padStart(7)}  ${gb(bytes / w).padStart(5)}  ${sec.toFixed(2).padStart(7)}  ${gb(bytes / sec).padStart(5)}  ${(bytes / sec / copy).toFixed(3).padStart(15)}  ${(rss / 1024).toFixed(0).padStart(5)} MiB`);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sequential write rate of this machine's disk (page cache, then fsync), for the end-to-end ceiling. */
function diskWriteRate(): string {
  const f = join(tmpdir(), `quantkit-dd-${process.pid}`);
  try {
    const r = spawnSync('dd', ['if=/dev/zero', `of=${f}`, 'bs=1M', 'count=1024', 'conv=fsync'], { encoding: 'utf8' });
    return (r.stderr || r.stdout || 'dd failed').trim().split('\n').pop()!;
  } finally {
    rmSync(f, { force: true });
  }
}

if (mode === 'vs-llama') {
  const { vsLlama } = await import('./bench/vs-llama.js');
  await vsLlama();
  process.exit(0);
}
const copy = memcpyRate(256e6);
if (mode === 'scale') {
  if (!scaleDir) throw new Error('usage: npm run bench -- scale DIR');
  console.log(`memcpy ${gb(copy)} GB/s; disk (dd 1 GiB, fsync): ${diskWriteRate()}`);
  await endToEnd([scaleDir], 1, copy);
} else if (mode === 'kernels') {
  await kernels(copy, scaleDir ? new RegExp(scaleDir) : undefined);
} else if (mode === 'gptq') {
  await gptq();
} else if (mode === 'kquants') {
  await import('./bench/kquants-vs-llama.js'); // K-quant files vs the real llama-quantize (its own usage line)
} else {
  await kernels(copy);
  await endToEnd(['models/stories260k', 'models/tinystories-656k'], 3, copy);
}
console.log(`\nbench process peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
