/**
 * Benchmarks (not tests): kernel throughput as GB/s of bf16 input and as a ratio to memcpy measured
 * in the same run, and end-to-end quantization of the bundled models. Prints the ISA and peak RSS.
 *   npm run bench            all of it
 *   npm run bench -- kernels only the kernel table
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addon, allocateParts, type KernelSpec } from '../src/native.js';
import { quantize } from '../src/quantize.js';

const A = addon();
const only = process.argv[2];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** memcpy bandwidth (bytes copied per second) on a buffer far larger than the caches. */
function memcpyRate(bytes: number): number {
  const a = Buffer.alloc(bytes, 1), b = Buffer.alloc(bytes);
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = process.hrtime.bigint();
    a.copy(b);
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return bytes / median(times);
}

function randomBf16(n: number): Uint8Array {
  const f = new Float32Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const u = s / 2 ** 32;
    f[i] = (u - 0.5) * 0.04 * (i % 997 === 0 ? 10 : 1);
  }
  const u32 = new Uint32Array(f.buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = u32[i]! >>> 16;
  return new Uint8Array(out.buffer);
}

async function kernels() {
  const rows = 4096, cols = 4096;
  const src = randomBf16(rows * cols);
  const copy = memcpyRate(src.length * 4);
  const info = A.info();
  console.log(`kernels: isa ${info.isa}, 1 thread, input ${rows}x${cols} bf16 = ${(src.length / 1e6).toFixed(1)} MB; memcpy ${(copy / 1e9).toFixed(2)} GB/s`);
  console.log('scheme               GB/s(bf16 in)  ratio-to-memcpy  ms');
  const specs: [string, KernelSpec][] = [
    ['Q4_0 (ggml)', { scheme: 'q4_0', bits: 4, group: 32, scaleDtype: 'F16' }],
    ['Q8_0 (ggml)', { scheme: 'q8_0', bits: 8, group: 32, scaleDtype: 'F16' }],
    ['Q4_1 (ggml)', { scheme: 'q4_1', bits: 4, group: 32, scaleDtype: 'F16' }],
    ['int4 g32 sym', { scheme: 'int_sym', bits: 4, group: 32, scaleDtype: 'BF16' }],
    ['int4 g128 asym', { scheme: 'int_asym', bits: 4, group: 128, scaleDtype: 'BF16' }],
    ['int8 g32 sym', { scheme: 'int_sym', bits: 8, group: 32, scaleDtype: 'BF16' }],
  ];
  for (const [label, spec] of specs) {
    const out = allocateParts(spec, rows, cols);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = process.hrtime.bigint();
      await A.quantize({ spec, rows, cols, src, srcDtype: 'BF16', out });
      times.push(Number(process.hrtime.bigint() - t) / 1e9);
    }
    const rate = src.length / median(times);
    console.log(`${label.padEnd(20)} ${(rate / 1e9).toFixed(3).padStart(13)}  ${(rate / copy).toFixed(3).padStart(15)}  ${(median(times) * 1e3).toFixed(1)}`);
  }
}

async function endToEnd() {
  const dir = mkdtempSync(join(tmpdir(), 'quantkit-bench-'));
  try {
    console.log('\nend to end (bundled models, page cache to disk, verify included):');
    for (const model of ['models/stories260k', 'models/tinystories-656k']) {
      for (const format of ['safetensors', 'gguf'] as const) {
        const times: number[] = [];
        for (let i = 0; i < 5; i++) {
          const t = process.hrtime.bigint();
          await quantize(model, { bits: 4, format, output: join(dir, `o${i}`), force: true });
          times.push(Number(process.hrtime.bigint() - t) / 1e9);
        }
        console.log(`  ${model.padEnd(26)} ${format.padEnd(12)} ${(median(times) * 1e3).toFixed(1)} ms`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!only || only === 'kernels') await kernels();
if (!only || only === 'e2e') await endToEnd();
console.log(`\npeak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
