/**
 * quantkit's GGUF quantizers against llama.cpp's OWN code, byte for byte: scripts/build-ggml-reference.sh
 * takes ggml-quants.c and its headers out of the llama.cpp source that node-llama-cpp bundles (a git
 * bundle), compiles them as llama.cpp's ggml-base is compiled, with native/test/ggml_reference.c as the
 * driver (cached per bundle commit). For every type llama-quantize writes from these quantizers, with
 * and without an importance matrix, the quantized bytes of every case and their dequantized floats must
 * equal llama.cpp's, on every instruction set this CPU runs (a process per QUANTKIT_ISA).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addon, type KernelMethod, type KernelScheme, type KernelSpec } from '../../src/native.js';
import { ROOT, STORIES260K, loadFloatTensors, tempDir } from '../helpers/models.js';

const BUNDLE = join(ROOT, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = !existsSync(BUNDLE) ? `no llama.cpp source bundle at ${BUNDLE}` : !have(process.env.CC ?? 'cc') ? 'no C compiler (cc)' : !have('git') ? 'no git' : null;
if (missing) console.log(`ggml-identity: skipped, ${missing}`);

/** ggml's type ids for the schemes (ggml.h). */
const TYPES: { scheme: KernelScheme; ggml: number; bits: number; block: number }[] = [
  { scheme: 'q4_0', ggml: 2, bits: 4, block: 32 },
  { scheme: 'q4_1', ggml: 3, bits: 4, block: 32 },
  { scheme: 'q5_0', ggml: 6, bits: 5, block: 32 },
  { scheme: 'q5_1', ggml: 7, bits: 5, block: 32 },
  { scheme: 'q8_0', ggml: 8, bits: 8, block: 32 },
  { scheme: 'q2_k', ggml: 10, bits: 2, block: 256 },
  { scheme: 'q3_k', ggml: 11, bits: 3, block: 256 },
  { scheme: 'q4_k', ggml: 12, bits: 4, block: 256 },
  { scheme: 'q5_k', ggml: 13, bits: 5, block: 256 },
  { scheme: 'q6_k', ggml: 14, bits: 6, block: 256 },
  { scheme: 'iq4_nl', ggml: 20, bits: 4, block: 32 },
];

function rng(seed: number) {
  let s = seed >>> 0;
  const u = () => ((s = (s * 1664525 + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const gauss = () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return { u, gauss };
}

const toBf16 = (v: number) => {
  const f = new Float32Array([v]);
  const b = new Uint32Array(f.buffer);
  b[0] = (b[0]! + 0x7fff + ((b[0]! >>> 16) & 1)) & 0xffff0000; // round to nearest even
  return f[0]!;
};

interface Pattern {
  name: string;
  srcDtype: 'F32' | 'BF16';
  rows: number;
  values: (i: number, cols: number) => number;
}

/** The inputs: shaped like weights, and the edge cases of the level searches. */
function patterns(real: Float32Array): Pattern[] {
  const r = rng(7);
  const runs = new Map<number, number>();
  const run = (k: number) => {
    if (!runs.has(k)) runs.set(k, (Math.floor(r.u() * 33) - 16) * 0.125);
    return runs.get(k)!;
  };
  return [
    { name: 'gaussian with 0.5% outliers, bf16', srcDtype: 'BF16', rows: 4, values: () => toBf16(r.gauss() * 0.02 * (r.u() < 0.005 ? 40 : 1)) },
    { name: 'real bf16 weights (stories260k)', srcDtype: 'BF16', rows: 8, values: (i) => real[i % real.length]! },
    { name: 'gaussian, f32', srcDtype: 'F32', rows: 3, values: () => Math.fround(r.gauss() * 0.05) },
    { name: 'constant runs of 16 and constant rows', srcDtype: 'F32', rows: 3, values: (i, cols) => (i < cols ? 0.75 : run(i >> 4)) },
    { name: 'zero rows and zero blocks', srcDtype: 'F32', rows: 3, values: (i, cols) => (i < cols || (i >> 5) % 3 === 0 ? 0 : Math.fround(r.gauss() * 0.01)) },
    { name: 'subnormals', srcDtype: 'F32', rows: 2, values: (i) => Math.fround((Math.floor(r.u() * 33) - 16) * (i % 7 === 0 ? 1e-38 : 1e-41)) },
    { name: 'ties (small multiples of 1/4)', srcDtype: 'F32', rows: 3, values: () => (Math.floor(r.u() * 33) - 16) * 0.25 },
    { name: 'large values, scales near the top of f16', srcDtype: 'F32', rows: 2, values: () => Math.fround(r.gauss() * 2e3 * (r.u() < 0.01 ? 30 : 1)) },
  ];
}

/** An importance vector like llama.cpp's (mean squared activations: positive, spread over decades, a few zeros). */
function imatrix(cols: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: cols }, () => (r.u() < 0.03 ? 0 : Math.fround(Math.exp(2 * r.gauss()))));
}

describe.skipIf(missing !== null)('GGUF quantizers equal llama.cpp (its own ggml-quants.c, compiled from the bundled source)', () => {
  it(`every type, with and without an importance matrix, on ${addon().info().available.join(', ')}`, async () => {
    const refDir = execFileSync('bash', ['scripts/build-ggml-reference.sh'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
    const tensors = await loadFloatTensors(STORIES260K);
    const real = Float32Array.from([...tensors.values()].filter((t) => t.shape.length === 2).flatMap((t) => [...t.values]));
    const dir = tempDir('quantkit-ggml-identity-');
    const records: Buffer[] = [];
    const cases: { spec: KernelSpec; srcDtype: string; label: string; rows: number; cols: number; bytes: number }[] = [];
    let seed = 1;
    for (const t of TYPES)
      for (const p of patterns(real)) {
        // the same rows with and without the importance matrix
        const cols = t.block === 256 ? 256 * (1 + (seed % 3)) : 32 * (1 + (seed % 3)) + (seed % 2) * 256;
        const x = Float32Array.from({ length: p.rows * cols }, (_, i) => p.values(i, cols));
        for (const method of ['rtn', 'imatrix'] as KernelMethod[]) {
          const w = method === 'imatrix' ? imatrix(cols, seed) : undefined;
          records.push(Buffer.from(Int32Array.from([t.ggml, p.rows, cols, w ? 1 : 0]).buffer));
          if (w) records.push(Buffer.from(w.buffer));
          records.push(Buffer.from(x.buffer));
          const spec: KernelSpec = { scheme: t.scheme, bits: t.bits, group: t.block, scaleDtype: 'F16', method };
          const bytes = p.rows * addon().layout({ spec, cols }).dataBytesPerRow;
          cases.push({ spec, srcDtype: p.srcDtype, label: `${t.scheme} ${method} ${p.name} (${p.rows}x${cols})`, rows: p.rows, cols, bytes });
        }
        seed++;
      }
    const request = join(dir, 'request.bin'), caseFile = join(dir, 'cases.json');
    writeFileSync(request, Buffer.concat(records));
    writeFileSync(caseFile, JSON.stringify(cases.map(({ spec, srcDtype }) => ({ spec, srcDtype }))));
    execFileSync(join(refDir, 'ggml_reference'), [request, join(dir, 'llama.bin')]);
    const llama = readFileSync(join(dir, 'llama.bin'));

    // The importance matrix reaches llama.cpp's quantizers: it changes the bytes of every type but
    // Q8_0, which ignores it (there and here).
    const quantized: Buffer[] = [];
    for (let at = 0, k = 0; k < cases.length; k++) {
      quantized.push(llama.subarray(at, at + cases[k]!.bytes));
      at += cases[k]!.bytes + 4 * cases[k]!.rows * cases[k]!.cols;
    }
    for (const t of TYPES) {
      const pairs = cases.flatMap((c, k) => (c.spec.scheme === t.scheme && c.spec.method === 'rtn' ? [Buffer.compare(quantized[k]!, quantized[k + 1]!) !== 0] : []));
      expect(pairs.some(Boolean), `${t.scheme}: the importance matrix changes the bytes`).toBe(t.scheme !== 'q8_0');
    }

    for (const isa of addon().info().available) {
      const out = join(dir, `${isa}.bin`);
      const r = spawnSync(process.execPath, [join(ROOT, 'test', 'helpers', 'quantize-cases.mjs'), request, caseFile, out], {
        encoding: 'utf8',
        env: { ...process.env, QUANTKIT_ISA: isa },
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(isa);
      const ours = readFileSync(out);
      expect(ours.length).toBe(llama.length);
      let at = 0;
      for (const c of cases) {
        for (const [what, n] of [['quantized bytes', c.bytes], ['dequantized floats', 4 * c.rows * c.cols]] as const) {
          const a = ours.subarray(at, at + n), b = llama.subarray(at, at + n);
          const first = a.findIndex((v, i) => v !== b[i]);
          expect(first, `${isa}: ${c.label}: ${what} differ from llama.cpp's at byte ${first}`).toBe(-1);
          at += n;
        }
      }
    }
  }, 180_000); // the first run compiles ggml-quants.c (cached afterwards)
});
