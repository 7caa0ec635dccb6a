/**
 * The quantize pipeline: plan → write into a temporary directory (read a tensor, quantize it in the
 * addon, append it) → verify the written files against the source and against the predicted sizes →
 * write quantization-report.json → rename the directory into place. On any error or abort the
 * temporary directory is removed: the output location holds a complete, verified result or nothing.
 */
import { dirname, join, resolve } from 'node:path';
import { Checkpoint, modelName, pathExists } from './checkpoint.js';
import { convertTensor } from './convert.js';
import { availableCpus } from './cpus.js';
import { NonFiniteCheck, type NonFiniteCopy } from './finite.js';
import { rowOrderOf, transformTensor } from './formats/gguf-arch.js';
import { QuantkitError } from './errors.js';
import type { Materialized } from './formats/format.js';
import { type KernelSpec, type QuantizeStatus, addon, allocateParts, newControl } from './native.js';
import { Prefetcher } from './prefetch.js';
import { stagedOutput } from './staged-output.js';
import { BufferPool } from './buffer-pool.js';
import { type Progress, cancelledAsAbort, linkCancel, progressTicker } from './run-control.js';
export type { Progress } from './run-control.js';
export { publish } from './staged-output.js';
import { type Plan, type PlanEntry, type QuantizeOptions, checkKernels, formatFor, imatrixWeights, planAddsZeroPoints, planModeLabel, planResolved, resolveOptions } from './plan.js';
import { takeChecksums, watchChecksums, writeFileAtomic } from './atomic-file.js';
import type { FloatDtype } from './safetensors/dtypes.js';
import { type VerifyResult, checkMaxRelRmse, verifyOutput } from './verify.js';
import { type VerificationInfo, type VerifyMode, Measurements, checkWritten, checksumList, compareChecksums } from './written-check.js';
import { type AutoSummary, autoSummary, prepareQuantizer } from './quant/auto.js';
import { estimateColumnImportance } from './quant/importance.js';
import { ROW_CHUNKED_BYTES, quantizeInRowChunks } from './quant/row-chunks.js';
import type { TensorQuantizer } from './quant/tensor-quantizer.js';
import { VERSION } from './version.js';
import { type EvaluationOutcome, evaluateWritten } from './eval/written-eval.js';
import { type Estimate, estimateModel } from './estimate/estimate.js';
import { fromCheckpoint } from './estimate/model.js';
import { parseRepoId } from './hub/client.js';
import type { PullOptions } from './hub/pull.js';

export const REPORT_FILE = 'quantization-report.json';

export interface QuantizeRunOptions extends QuantizeOptions {
  /** Kernel threads (default: the number of CPUs). */
  threads?: number;
  /** Output directory (default: ./<model>-<scheme> in the current directory). */
  output?: string;
  /** Replace an existing output directory. */
  force?: boolean;
  /** Fail (ERR_ACCURACY) when any quantized tensor's relative RMSE exceeds this. */
  maxRelRmse?: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /** When `model` is a hub id (`org/name[@revision]`) rather than a path: how to pull it first. */
  hub?: PullOptions;
  /** Copy NaN/Inf values of tensors kept unquantized (listed in the report) instead of refusing them. */
  allowNonFinite?: boolean;
  /** Where the output ends up when the caller moves it after this run (a pipeline's component): the report names it. */
  finalOutput?: string;
  /**
   * 'fast' (default): errors measured from the buffers before they are written, files hashed as
   * written and re-opened (written-check.ts); 'full': also re-read and dequantize every tensor from disk
   * against the source re-read, and compare the files on disk with the hashes (as `quantkit verify`).
   */
  verify?: VerifyMode;
  /**
   * The written file's perplexity beside the original's: true on the bundled TinyStories excerpt, a path
   * on that text; false or absent (the library's default, which keeps library runs as fast as before)
   * skips it. The CLI measures it by default (--no-eval). Measured where the reference forward pass
   * covers the model and it is small (src/eval/written-eval.ts); the report says why not elsewhere.
   */
  evalFile?: string | boolean;
}

export interface QuantizationReport extends VerifyResult {
  quantkit: string;
  options: Record<string, unknown>;
  /** Every file's size predicted by the plan before writing, and what was written. */
  sizes: { name: string; predicted: number; actual: number }[];
  /**
   * Inference memory of the written weights, predicted before writing (`quantkit estimate` with the
   * same options; device peak, batch 1, 2048-token context or the model's own if shorter). Its weights
   * component is checked against the tensor bytes read back from the output. Null when config.json does
   * not name an architecture with formulas.
   */
  predicted_memory: { peak_bytes: number; peak_kind: string; components: Record<string, number>; batch: number | null; seq: number | null; weights_bytes_written: number } | null;
  /** --method auto: rows written from each candidate, and why there was no calibration if there was none. */
  auto?: AutoSummary;
  /** GPTQ methods: the calibration that ran (the model's own text: sequences, tokens each, seed; damping). */
  calibration?: { samples: number; length: number; seed: number; damp: number };
  plan: { name: string; treatment: string; format: string; reason?: string; note?: string }[];
  /** Kept tensors copied with NaN/Inf values (--allow-non-finite); absent when there were none. */
  non_finite?: NonFiniteCopy[];
  /** Which verification ran and what it checked; the files' CRC-32 as written. */
  verification: VerificationInfo;
  /** Perplexity of the written file (read back from disk) and of the original on the evaluation text, or why it was not measured. */
  evaluation: EvaluationOutcome;
  /** Peak resident memory of this process when the report was written (bytes). */
  peak_rss_bytes: number;
}

export interface QuantizeResult {
  output: string;
  plan: Plan;
  report: QuantizationReport;
}

/**
 * The folder quantize (one plan) or quantizePipeline (its components' plans) writes when no output is
 * given: the mode is the plans', so it says `auto` where auto adds zero points, which only the plan knows.
 */
export function defaultOutputName(model: string, o: QuantizeOptions, plans: Plan | readonly Plan[]): string {
  const g = o.groupSize ?? 32;
  const dir = resolve(model);
  const name = modelName(dir.endsWith('.safetensors') ? dirname(dir) : dir);
  const method = o.quantMethod && o.quantMethod !== 'rtn' && o.quantMethod !== 'auto' ? `-${o.quantMethod}` : '';
  if (o.ggufType) return `${name}-${o.ggufType}${method}-gguf`;
  if (o.onnxDtype) return `${name}-${o.onnxDtype}${method}-onnx`;
  const all = Array.isArray(plans) ? plans : [plans as Plan];
  const mode = all.some(planAddsZeroPoints) ? 'auto' : (all[0]?.options.mode ?? o.mode ?? 'sym');
  return `${name}-int${o.bits}-${g === 'row' ? 'row' : `g${g}`}-${mode}${method}-${o.format ?? 'safetensors'}`;
}

/**
 * A model path as given, or, for a hub id that is not a local path, the cache snapshot `pull` fills
 * (downloading only what is missing; HF_HUB_OFFLINE=1 uses the cache alone).
 */
export async function localModel(model: string, o: { hub?: PullOptions; onProgress?: (p: Progress) => void; signal?: AbortSignal } = {}): Promise<string> {
  const id = parseRepoId(model);
  if (!id || (await pathExists(model))) return model;
  const { pull } = await import('./hub/pull.js'); // loaded only when a hub id is given
  const r = await pull(id.repo, { ...o.hub, revision: o.hub?.revision ?? id.revision, onProgress: o.onProgress, signal: o.signal });
  return r.snapshot;
}

function planSummary(plan: Plan): QuantizationReport['plan'] {
  return plan.entries.map((e) => {
    const t = e.treatment;
    return t.kind === 'quantize'
      ? { name: e.tensor.name, treatment: 'quantized', format: t.label, ...(t.note ? { note: t.note } : {}) }
      : { name: e.tensor.name, treatment: 'kept', format: t.outDtype, reason: t.reason };
  });
}

/**
 * Source bytes read and converted or quantized ahead of the writer (see Prefetcher: the next tensor
 * always, more within this budget). One tensor ahead keeps the kernels busy while one is written; more
 * only costs memory and, in fresh buffers, first-touch page faults that cost more CPU than the copies
 * (0.98 GB checkpoint, 2 threads: 24 MiB against 96 MiB gave the same wall time, 0.86x the CPU and
 * 130 against 207 MiB peak RSS).
 */
const PREFETCH_BUDGET = 32 * 2 ** 20;

/** The CPUs this process may use (affinity, capped by a cgroup CPU quota): see cpus.ts. */
export function defaultThreads(): number {
  return availableCpus();
}

/**
 * Reads one tensor and converts or quantizes it; its buffers come from (and go back to) `pool`. With
 * `measure`, its error is measured from the in-memory buffers before they go on (written-check.ts).
 */
export async function materialize(ckpt: Checkpoint, e: PlanEntry, threads: number, control: BigInt64Array, pool: BufferPool, quantizer: TensorQuantizer, finite: NonFiniteCheck, measure?: Measurements): Promise<Materialized> {
  const t = e.treatment;
  // Where one kernel call quantizes the tensor, a row reorder (GGUF's rotary q/k rows) is applied by
  // the kernels as they read the rows, and the error is measured in the same pass: no reordered copy,
  // no second pass over the source.
  const direct = t.kind === 'quantize' && quantizer.passesThrough(t.spec);
  const fused = direct && measure !== undefined;
  if (t.kind === 'quantize' && direct && !t.transform && e.tensor.bytes > ROW_CHUNKED_BYTES) {
    // Too large to read whole: a chunk of rows at a time (quant/row-chunks.ts), same bytes, same errors.
    const { rows, cols } = t.view;
    const parts = allocateParts(t.spec, rows, cols, (n) => pool.acquire(n));
    const job = { name: e.tensor.name, spec: t.spec, rows, cols, srcDtype: e.tensor.dtype as FloatDtype, out: parts, threads, control, ...(fused ? { measure: true } : {}) };
    const status = await quantizeInRowChunks(ckpt, e.tensor, job, quantizer, pool);
    checkStatus(e, t.spec, cols, status);
    if (fused && status.errors) measure.record(e, rows, cols, status.errors);
    else if (measure) throw new QuantkitError('ERR_NATIVE', 'the addon measured no error for a tensor quantized in row chunks', { file: e.tensor.file, tensor: e.tensor.name });
    return { kind: 'quantize', parts };
  }
  let bytes = await ckpt.read(e.tensor, pool.acquire(e.tensor.bytes));
  let dtype = e.tensor.dtype;
  if (t.kind === 'keep') finite.check(bytes, e.tensor);
  const rowOrder = direct && t.transform?.kind === 'unpermute-rope' ? rowOrderOf(e.tensor.shape[0]!, t.transform) : undefined;
  if (t.transform && !rowOrder) {
    const read = bytes;
    ({ bytes, dtype } = transformTensor(read, dtype, e.tensor.shape, t.transform, (n) => pool.acquire(n)));
    pool.release(read);
  }
  if (t.kind === 'keep') {
    Atomics.add(control, 0, BigInt(e.tensor.bytes));
    const out = convertTensor(bytes, dtype, t.outDtype, { file: e.tensor.file, tensor: e.tensor.name });
    measure?.kept(e, bytes, dtype, out, t.outDtype);
    if (out !== bytes) pool.release(bytes);
    return { kind: 'keep', bytes: out };
  }
  const { rows, cols } = t.view;
  const parts = allocateParts(t.spec, rows, cols, (n) => pool.acquire(n));
  const src = bytes;
  try {
    const status = await quantizer.quantize({ name: e.tensor.name, spec: t.spec, rows, cols, src, srcDtype: dtype as FloatDtype, out: parts, threads, control, ...(rowOrder ? { rowOrder } : {}), ...(fused ? { measure: true } : {}) });
    if (rowOrder && !status.rowOrderApplied)
      throw new QuantkitError('ERR_NATIVE', 'the loaded quantkit addon is older than its JavaScript (it ignored the row order): rebuild it (npm run build:native)', { file: e.tensor.file, tensor: e.tensor.name });
    checkStatus(e, t.spec, cols, status);
    if (fused && status.errors) measure.record(e, rows, cols, status.errors);
    else await measure?.quantized(e, t.spec, rows, cols, src, dtype as FloatDtype, parts, threads);
  } finally {
    pool.release(src);
  }
  return { kind: 'quantize', parts };
}

/** Refuses a tensor with NaN/Inf weights or scales that overflow their dtype, naming file, tensor and where. */
function checkStatus(e: PlanEntry, spec: KernelSpec, cols: number, status: QuantizeStatus): void {
  const where = { file: e.tensor.file, tensor: e.tensor.name };
  if (status.nonfinite > 0) {
    const i = status.firstNonfinite;
    throw new QuantkitError('ERR_NONFINITE', `${status.nonfinite} NaN/Inf weight(s), the first at row ${Math.floor(i / cols)}, column ${i % cols}: refusing to quantize (--keep with --allow-non-finite stores it unquantized as it is)`, where);
  }
  if (status.scaleOverflow > 0)
    throw new QuantkitError('ERR_SCALE_OVERFLOW', `${status.scaleOverflow} group scale(s) overflow ${spec.scaleDtype} (first at row ${status.firstOverflowRow}); use --scale-dtype F32 or --keep`, where);
}

/** Quantizes a checkpoint directory end to end; see the module comment for the guarantees. */
export async function quantize(model: string, options: QuantizeRunOptions): Promise<QuantizeResult> {
  const o = resolveOptions(options);
  model = await localModel(model, options);
  const ckpt = await Checkpoint.open(model);
  try {
    const plan = await planResolved(ckpt, o);
    checkKernels(plan);
    const out = resolve(options.output ?? defaultOutputName(model, options, plan));
    return await stagedOutput(out, ckpt.input, options.force ?? false, async (tmp) => {
      const predicted = await predictMemory(ckpt, options);
      const report = await writeAndVerify(plan, ckpt, tmp, options, predicted, options.finalOutput ?? out);
      return { output: out, plan, report };
    });
  } finally {
    await ckpt.close();
  }
}

/** The inference-memory prediction for the output, made before anything is written. */
async function predictMemory(ckpt: Checkpoint, o: QuantizeOptions): Promise<Estimate | null> {
  const model = fromCheckpoint(ckpt, 'safetensors headers');
  if (!model.dims) return null;
  return estimateModel(model, { scenario: 'inference', bits: o.bits, groupSize: o.groupSize, mode: o.mode, format: o.format, keep: o.keep, bitsFor: o.bitsFor, scaleDtype: o.scaleDtype, maxShardSize: o.maxShardSize, ggufType: o.ggufType, pure: o.pure, onnxDtype: o.onnxDtype, quantMethod: o.quantMethod, imatrix: o.imatrix });
}

/** Writes and verifies into `dir`; the report names `output`, where the files are once published. */
async function writeAndVerify(plan: Plan, ckpt: Checkpoint, dir: string, options: QuantizeRunOptions, predicted: Estimate | null, output: string): Promise<QuantizationReport> {
  const threads = options.threads ?? defaultThreads();
  // The search weighs columns by an importance read off the weights; GPTQ and auto first have the model
  // write text and collect its layers' input statistics (src/quant/auto.ts).
  const pool = new BufferPool();
  // --imatrix: llama.cpp's importance matrix, by checkpoint tensor (plan.ts imatrixWeights).
  const importance = plan.options.importanceMatrix ? imatrixWeights(plan) : plan.options.quantMethod !== 'rtn' ? await estimateColumnImportance(ckpt, options.signal, pool, threads) : new Map<string, Float32Array>();
  const calibrateProgress = (done: boolean) => options.onProgress?.({ phase: 'calibrate', tensor: done ? '' : 'the model writes its calibration text', done: done ? 1 : 0, total: 1, bytesDone: 0, bytesTotal: 0 });
  const { quantizer, calibration, fallback } = await prepareQuantizer(ckpt, plan, { importance, calibration: options.calibration, threads, signal: options.signal, onCalibrate: calibrateProgress });
  const finite = new NonFiniteCheck(options.allowNonFinite ?? false);
  const control = newControl();
  const unlink = linkCancel(options.signal, control);
  const ticker = progressTicker(options.onProgress, 'quantize', control, plan.sourceBytes, plan.entries.length);
  const mode: VerifyMode = options.verify ?? 'fast';
  // ONNX keeps the full read-back: its writer splits and reorders tensors into initializers (and pads rows).
  const measure = plan.format === 'onnx' || mode === 'full' ? undefined : new Measurements();
  const prefetch = new Prefetcher(plan.entries, (e) => e.tensor.bytes, (e) => materialize(ckpt, e, threads, control, pool, quantizer, finite, measure), PREFETCH_BUDGET);
  let written = 0;
  let previous: Materialized | undefined;
  // The writer asks for tensors one after the other: asking for the next means the previous one's
  // bytes are written, so its buffers go back to the pool.
  const recycle = (m: Materialized | undefined) => {
    if (m?.kind === 'keep') pool.release(m.bytes);
    else if (m) pool.release(m.parts.data, m.parts.scales, m.parts.zeros);
  };
  watchChecksums(dir);
  try {
    await formatFor(plan.format).write(plan, dir, {
      signal: options.signal,
      materialize: async (e) => {
        recycle(previous);
        previous = await prefetch.get(e);
        ticker.tensorDone(e.tensor.name, ++written);
        return previous;
      },
    });
  } catch (err) {
    Atomics.store(control, 1, 1n); // stop the tensors being prepared ahead
    takeChecksums(dir); // dropped: the run failed
    await prefetch.drain();
    throw cancelledAsAbort(err, options.signal);
  } finally {
    ticker.stop();
    unlink();
  }

  const hashes = takeChecksums(dir);
  const full = mode === 'full' || !measure;
  if (mode === 'full') await compareChecksums(hashes, pool);
  const verified = full ? await verifyOutput(dir, ckpt, { signal: options.signal, threads, onProgress: options.onProgress, pool }) : await checkWritten(dir, ckpt, plan, measure);
  const verification: VerificationInfo = {
    mode: full ? 'full' : 'fast',
    checks: full
      ? ['every tensor re-read from disk, dequantized and compared with the source re-read', ...(mode === 'full' ? ['files on disk equal the bytes written (CRC-32)'] : []), 'file sizes equal the plan', 'files re-opened with quantkit\'s readers']
      : ['every tensor\'s error measured from the bytes written, before they left memory', 'files hashed (CRC-32) as written', 'file sizes equal the plan', 'files re-opened with quantkit\'s readers: every tensor as planned (name, encoding, bytes)'],
    checksums: checksumList(dir, hashes),
  };
  const actual = new Map(verified.files.map((f) => [f.name, f.bytes]));
  const sizes = plan.files.map((f) => ({ name: f.name, predicted: f.bytes, actual: actual.get(f.name) ?? -1 }));
  const wrong = sizes.filter((s) => s.predicted !== s.actual);
  if (wrong.length)
    throw new QuantkitError('ERR_VERIFY', `file sizes differ from the plan: ${wrong.map((s) => `${s.name} predicted ${s.predicted}, wrote ${s.actual}`).join('; ')}`, { file: dir });
  checkMaxRelRmse(verified.tensors, options.maxRelRmse);
  const weightsWritten = verified.tensors.reduce((n, t) => n + t.bytes, 0);
  if (predicted && predicted.components.weights !== weightsWritten)
    throw new QuantkitError('ERR_VERIFY', `tensor bytes written (${weightsWritten}) differ from the memory prediction's weights (${predicted.components.weights})`, { file: dir });
  const evaluation = await evaluate(dir, ckpt, plan, options, threads);
  const { signal: _s, onProgress: _p, finalOutput: _f, ...plainOptions } = options;
  const report: QuantizationReport = {
    quantkit: VERSION,
    ...verified,
    output,
    ...finite.reportField(),
    options: { ...plainOptions, output, format: plan.format, groupSize: plan.options.groupSize, mode: planModeLabel(plan), threads },
    sizes,
    ...(calibration ? { calibration: calibration.settings } : {}),
    ...(plan.options.quantMethod === 'auto' ? { auto: autoSummary(quantizer.choices, fallback) } : {}),
    predicted_memory: predicted && { peak_bytes: predicted.peak_bytes, peak_kind: predicted.peak_kind, components: predicted.components, batch: predicted.batch, seq: predicted.seq, weights_bytes_written: weightsWritten },
    plan: planSummary(plan),
    verification,
    evaluation,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
  await writeFileAtomic(join(dir, REPORT_FILE), JSON.stringify(report, jsonReplacer, 2) + '\n');
  return report;
}

/** The written file's perplexity beside the original's (src/eval/written-eval.ts), unless --no-eval. */
async function evaluate(dir: string, ckpt: Checkpoint, plan: Plan, options: QuantizeRunOptions, threads: number): Promise<EvaluationOutcome> {
  if (options.evalFile === false) return { skipped: '--no-eval' };
  if (options.evalFile === undefined) return { skipped: 'not asked (library option evalFile; the CLI measures it by default)' };
  options.onProgress?.({ phase: 'evaluate', tensor: 'perplexity of the written file and the original', done: 0, total: 1, bytesDone: 0, bytesTotal: 0 });
  return evaluateWritten(dir, ckpt, { format: plan.format, ...(typeof options.evalFile === 'string' ? { file: options.evalFile } : {}), threads, signal: options.signal });
}

/** JSON has no Infinity: an exact round trip's SNR is written as null. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
