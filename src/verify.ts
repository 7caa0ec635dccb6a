/**
 * Verification: re-open an output directory with quantkit's own readers, dequantize every quantized
 * tensor and compare it with the source checkpoint (RMSE, relative RMSE, SNR, max abs error, all from
 * sums accumulated in double); kept tensors must be bit-exact (or exact after widening to F32), and
 * tensors converted to a narrower float (F16, BF16) or transformed for llama.cpp are compared value by
 * value after the same transform, their rounding error reported like a quantization error.
 */
import { availableCpus } from './cpus.js';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Checkpoint, type CheckpointTensor } from './checkpoint.js';
import { toFloat32 } from './convert.js';
import { BufferPool } from './buffer-pool.js';
import { Prefetcher } from './prefetch.js';
import { QuantkitError } from './errors.js';
import type { ReadBackTensor } from './formats/format.js';
import { ggufFormat } from './formats/gguf.js';
import { type TensorTransform, ggufArchitecture, transformTensor } from './formats/gguf-arch.js';
import { packedSafetensorsFormat } from './formats/packed-safetensors.js';
import { onnxFormat } from './formats/onnx/onnx-format.js';
import { addon, newControl, type ErrorSums, type QuantizedParts } from './native.js';
import { type Progress, cancelledAsAbort, linkCancel, progressTicker } from './run-control.js';
import { type Dtype, type FloatDtype, dtypeSize, isKernelFloat, shapeElements } from './safetensors/dtypes.js';

export interface ErrorMetrics {
  rmse: number;
  relRmse: number;
  /** 10·log10(Σx²/Σe²); Infinity for an exact round trip. */
  snrDb: number;
  maxAbsErr: number;
}

export interface TensorReport extends ErrorMetrics {
  name: string;
  /** The checkpoint tensor it came from, when the output renamed it (runnable GGUF). */
  source?: string;
  shape: number[];
  sourceDtype: Dtype;
  treatment: 'quantized' | 'kept' | 'converted';
  /** e.g. "Q4_0", "int4 g32 sym", or the stored dtype of a kept tensor. */
  format: string;
  bytes: number;
  params: number;
}

export interface VerifyTotals extends ErrorMetrics {
  quantizedTensors: number;
  keptTensors: number;
  quantizedParams: number;
  quantizedBytes: number;
  bitsPerQuantizedWeight: number;
  outputBytes: number;
}

export interface VerifyResult {
  format: 'safetensors' | 'gguf' | 'onnx';
  output: string;
  source: string;
  tensors: TensorReport[];
  totals: VerifyTotals;
  files: { name: string; bytes: number }[];
}

export interface VerifyOptions {
  /** Buffers to reuse (quantize passes the one its write phase used, so memory is shared). */
  pool?: BufferPool;
  /** Kernel threads for the error pass (default: the number of CPUs). */
  threads?: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

export function metricsFromSums(s: Pick<ErrorSums, 'sumSqErr' | 'sumSqRef' | 'maxAbsErr' | 'count'>): ErrorMetrics {
  return {
    rmse: s.count ? Math.sqrt(s.sumSqErr / s.count) : 0,
    relRmse: s.sumSqRef > 0 ? Math.sqrt(s.sumSqErr / s.sumSqRef) : s.sumSqErr > 0 ? Infinity : 0,
    snrDb: s.sumSqErr > 0 ? 10 * Math.log10(s.sumSqRef / s.sumSqErr) : Infinity,
    maxAbsErr: s.maxAbsErr,
  };
}

export const EXACT: ErrorMetrics = { rmse: 0, relRmse: 0, snrDb: Infinity, maxAbsErr: 0 };

export async function detectFormat(dir: string) {
  if (await packedSafetensorsFormat.detect(dir)) return packedSafetensorsFormat;
  if (await ggufFormat.detect(dir)) return ggufFormat; // reads runnable and raw files alike
  if (await onnxFormat.detect(dir)) return onnxFormat;
  throw new QuantkitError('ERR_VERIFY', 'no quantkit output here (no .gguf file, no onnx/*.onnx, no config.json with a pack-quantized quantization_config)', { file: dir });
}

export function sourceOf(src: Checkpoint, name: string, out: string): CheckpointTensor {
  const t = src.tensor(name) ?? src.tensor(src.aliases.get(name) ?? '');
  if (!t) throw new QuantkitError('ERR_VERIFY', 'has no tensor of this name in the source checkpoint', { file: out, tensor: name });
  return t;
}

function sameValues(a: Uint8Array, aType: Dtype, b: Uint8Array, bType: Dtype): boolean {
  if (aType === bType) return Buffer.compare(a, b) === 0;
  const x = toFloat32(a, aType), y = toFloat32(b, bType);
  return x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
}

/** A tensor of the output and its source, both read into pool buffers, ready to compare. */
type Loaded =
  | { kind: 'keep'; rb: Extract<ReadBackTensor, { kind: 'keep' }>; s: CheckpointTensor; transform?: TensorTransform }
  | { kind: 'quantize'; rb: Extract<ReadBackTensor, { kind: 'quantize' }>; s: CheckpointTensor; source: Uint8Array; sourceDtype: Dtype; parts: QuantizedParts };

/** What the writer did to a source tensor before storing it (runnable GGUF), so the comparison does it too. */
type TransformOf = (sourceName: string) => TensorTransform | undefined;

function transformsFor(src: Checkpoint, runnable: boolean | undefined, out: string): TransformOf {
  if (!runnable) return () => undefined;
  const arch = ggufArchitecture(src.config, out);
  return (name) => arch.map(name === 'lm_head.weight' && src.aliases.get('model.embed_tokens.weight') === 'lm_head.weight' ? 'model.embed_tokens.weight' : name)?.transform;
}

const NARROWER: Partial<Record<Dtype, Dtype[]>> = { F16: ['F32', 'BF16'], BF16: ['F32', 'F16'] };

/** Error metrics of `stored` against `source`, value by value (both widened to float32). */
export function valueMetrics(source: Uint8Array, sourceDtype: Dtype, stored: Uint8Array, storedDtype: Dtype): { metrics: ErrorMetrics; exact: boolean } {
  const x = toFloat32(source, sourceDtype), y = toFloat32(stored, storedDtype);
  let sumSqErr = 0, sumSqRef = 0, maxAbsErr = 0;
  for (let i = 0; i < x.length; i++) {
    const e = y[i]! - x[i]!;
    sumSqErr += e * e;
    sumSqRef += x[i]! * x[i]!;
    maxAbsErr = Math.max(maxAbsErr, Math.abs(e));
  }
  return { metrics: metricsFromSums({ sumSqErr, sumSqRef, maxAbsErr, count: x.length }), exact: sumSqErr === 0 };
}

/**
 * Whether a kept tensor is compared value by value (stored narrower than its source, or transformed
 * for llama.cpp) rather than required to be exactly the source's values.
 */
export function keptIsConverted(storedDtype: Dtype, sourceDtype: Dtype, transform: TensorTransform | undefined): boolean {
  return !!transform || !!NARROWER[storedDtype]?.includes(sourceDtype);
}

/** Compares a converted or transformed tensor with its (transformed) source value by value. */
async function convertedMetrics(rb: Extract<ReadBackTensor, { kind: 'keep' }>, s: CheckpointTensor, src: Checkpoint, transform: TensorTransform | undefined): Promise<{ metrics: ErrorMetrics; exact: boolean }> {
  let source = await src.read(s);
  let dtype = s.dtype;
  if (transform) ({ bytes: source, dtype } = transformTensor(source, dtype, s.shape, transform));
  const stored = await rb.readRange(0, new Uint8Array(rb.bytes));
  return valueMetrics(source, dtype, stored, rb.dtype);
}

const COMPARE_SLICE_ELEMENTS = 4 << 20;

/** Compares a kept tensor with its source slice by slice (bounded memory, however large it is). */
async function sameAsSource(rb: Extract<ReadBackTensor, { kind: 'keep' }>, s: CheckpointTensor, src: Checkpoint, pool: BufferPool): Promise<boolean> {
  const n = shapeElements(s.shape)!;
  const a = dtypeSize(rb.dtype), b = dtypeSize(s.dtype);
  for (let at = 0; at < n; at += COMPARE_SLICE_ELEMENTS) {
    const len = Math.min(COMPARE_SLICE_ELEMENTS, n - at);
    const stored = await rb.readRange(at * a, pool.acquire(len * a));
    const source = await src.readRange(s, at * b, pool.acquire(len * b));
    const same = sameValues(stored, rb.dtype, source, s.dtype);
    pool.release(stored, source);
    if (!same) return false;
  }
  return true;
}

async function load(rb: ReadBackTensor, src: Checkpoint, out: string, pool: BufferPool, transformOf: TransformOf): Promise<Loaded> {
  const s = sourceOf(src, rb.source ?? rb.name, out);
  const transform = (rb.kind === 'quantize' ? rb.transform : undefined) ?? transformOf(s.name);
  const params = shapeElements(s.shape)!;
  const alloc = (n: number) => pool.acquire(n);
  if (rb.kind === 'keep') {
    if (shapeElements(rb.shape) !== params) throw new QuantkitError('ERR_VERIFY', `shape ${JSON.stringify(rb.shape)} does not match the source ${JSON.stringify(s.shape)}`, { file: out, tensor: rb.name });
    return { kind: 'keep', rb, s, ...(transform ? { transform } : {}) };
  }
  if (rb.view.rows * rb.view.cols !== (transform?.kind === 'pad-rows' ? s.shape[0]! * transform.cols : params) || !isKernelFloat(s.dtype))
    throw new QuantkitError('ERR_VERIFY', `quantized ${rb.view.rows}x${rb.view.cols} does not match the source ${s.dtype} ${JSON.stringify(s.shape)}`, { file: out, tensor: rb.name });
  const [read, parts] = await Promise.all([src.read(s, alloc(s.bytes)), rb.load(alloc)]);
  if (!transform) return { kind: 'quantize', rb, s, source: read, sourceDtype: s.dtype, parts };
  const t = transformTensor(read, s.dtype, s.shape, transform);
  pool.release(read);
  return { kind: 'quantize', rb, s, source: t.bytes, sourceDtype: t.dtype, parts };
}

async function check(l: Loaded, src: Checkpoint, out: string, threads: number, control: BigInt64Array, pool: BufferPool): Promise<{ report: TensorReport; sums?: ErrorSums }> {
  const { rb, s } = l;
  const base = { name: rb.name, ...(rb.source ? { source: rb.source } : {}), shape: s.shape, sourceDtype: s.dtype, bytes: rb.bytes, params: shapeElements(s.shape)! };
  if (l.kind === 'keep' && keptIsConverted(l.rb.dtype, s.dtype, l.transform)) {
    const { metrics, exact } = await convertedMetrics(l.rb, s, src, l.transform);
    Atomics.add(control, 0, BigInt(s.bytes));
    return { report: { ...base, treatment: exact ? 'kept' : 'converted', format: l.rb.dtype, ...metrics } };
  }
  if (l.kind === 'keep') {
    if (!(await sameAsSource(l.rb, s, src, pool))) throw new QuantkitError('ERR_VERIFY', 'kept tensor differs from the source', { file: out, tensor: rb.name });
    Atomics.add(control, 0, BigInt(s.bytes));
    return { report: { ...base, treatment: 'kept', format: l.rb.dtype, ...EXACT } };
  }
  const sums = await addon()
    .errorStats({ spec: l.rb.spec, rows: l.rb.view.rows, cols: l.rb.view.cols, src: l.source, srcDtype: l.sourceDtype as FloatDtype, parts: l.parts, threads, control })
    .finally(() => pool.release(l.source, l.parts.data, l.parts.scales));
  if (sums.nonfinite > 0) throw new QuantkitError('ERR_VERIFY', `${sums.nonfinite} values are NaN/Inf after dequantization`, { file: out, tensor: rb.name });
  sums.count -= l.rb.view.rows * l.rb.view.cols - base.params; // padding (whole blocks) is compared, not counted
  return { report: { ...base, treatment: 'quantized', format: l.rb.label, ...metricsFromSums(sums) }, sums };
}

/** Fails with ERR_ACCURACY (exit 5) when a quantized tensor's relative RMSE exceeds `limit`. */
export function checkMaxRelRmse(tensors: readonly TensorReport[], limit: number | undefined): void {
  if (limit === undefined) return;
  const over = tensors.filter((t) => t.treatment === 'quantized' && t.relRmse > limit);
  if (over.length)
    throw new QuantkitError('ERR_ACCURACY', `${over.length} tensor(s) exceed --max-rel-rmse ${limit}: ${over.slice(0, 5).map((t) => `${t.name} (${t.relRmse.toFixed(4)})`).join(', ')}${over.length > 5 ? ', ...' : ''}`);
}

/** Verifies an output directory against its source checkpoint (a path or an open Checkpoint). */
export async function verifyOutput(outDir: string, source: string | Checkpoint, options: VerifyOptions = {}): Promise<VerifyResult> {
  const src = typeof source === 'string' ? await Checkpoint.open(source) : source;
  try {
    const format = await detectFormat(outDir);
    const rb = await format.readBack(outDir);
    const threads = options.threads ?? availableCpus();
    const control = newControl();
    const pool = options.pool ?? new BufferPool();
    const unlink = linkCancel(options.signal, control);
    const transformOf = transformsFor(src, rb.runnable, outDir);
    const bytesTotal = rb.tensors.reduce((n, t) => n + (src.tensor(t.source ?? t.name)?.bytes ?? 0), 0);
    const ticker = progressTicker(options.onProgress, 'verify', control, bytesTotal, rb.tensors.length);
    try {
      const tensors: TensorReport[] = [];
      let sumSqErr = 0, sumSqRef = 0, maxAbsErr = 0, count = 0;
      // Reading the next tensors overlaps the error pass of the current one.
      const prefetch = new Prefetcher(rb.tensors, (t) => (t.kind === 'keep' ? 0 : t.bytes + (src.tensor(t.source ?? t.name)?.bytes ?? 0)), (t) => load(t, src, outDir, pool, transformOf), 64 * 2 ** 20);
      for (const [i, t] of rb.tensors.entries()) {
        options.signal?.throwIfAborted();
        const { report: r, sums } = await prefetch
          .get(t)
          .then((l) => check(l, src, outDir, threads, control, pool))
          .catch(async (e) => {
            Atomics.store(control, 1, 1n);
            await prefetch.drain();
            throw cancelledAsAbort(e, options.signal);
          });
        if (sums) {
          sumSqErr += sums.sumSqErr;
          sumSqRef += sums.sumSqRef;
          maxAbsErr = Math.max(maxAbsErr, sums.maxAbsErr);
          count += sums.count;
        }
        tensors.push(r);
        ticker.tensorDone(t.name, i + 1);
      }
      return await summarize(tensors, { sumSqErr, sumSqRef, maxAbsErr, count }, src, outDir, rb.format);
    } finally {
      ticker.stop();
      unlink();
      await rb.close();
    }
  } finally {
    if (typeof source === 'string') await src.close();
  }
}

/**
 * The result of a verification from its per-tensor reports and summed error: every source tensor must
 * be in the output; totals; the files of the output directory and their sizes.
 */
export async function summarize(tensors: TensorReport[], sums: Pick<ErrorSums, 'sumSqErr' | 'sumSqRef' | 'maxAbsErr' | 'count'>, src: Checkpoint, outDir: string, format: VerifyResult['format']): Promise<VerifyResult> {
  const covered = new Set(tensors.map((t) => sourceOf(src, t.source ?? t.name, outDir).name));
  for (const t of src.tensors) if (!covered.has(t.name)) throw new QuantkitError('ERR_VERIFY', 'source tensor is missing from the output', { file: outDir, tensor: t.name });
  const q = tensors.filter((t) => t.treatment === 'quantized');
  const quantizedParams = q.reduce((s, t) => s + t.params, 0);
  const quantizedBytes = q.reduce((s, t) => s + t.bytes, 0);
  const entries = await readdir(outDir, { recursive: true, withFileTypes: true });
  const names = entries.filter((e) => e.isFile()).map((e) => relative(outDir, join(e.parentPath, e.name)).split(sep).join('/'));
  const files = await Promise.all(names.sort().map(async (name) => ({ name, bytes: (await stat(join(outDir, name))).size })));
  return {
    format,
    output: outDir,
    source: src.dir,
    tensors,
    totals: {
      ...metricsFromSums(sums),
      quantizedTensors: q.length,
      keptTensors: tensors.length - q.length,
      quantizedParams,
      quantizedBytes,
      bitsPerQuantizedWeight: quantizedParams ? (quantizedBytes * 8) / quantizedParams : 0,
      outputBytes: files.reduce((s, f) => s + f.bytes, 0),
    },
    files,
  };
}
