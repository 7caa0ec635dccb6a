/**
 * The planner: decides what happens to each tensor (quantized with which scheme, or kept and why) and,
 * through the output format, how many bytes every output file will have. `quantize` executes a plan,
 * `plan`/`--dry-run` prints it, and estimation reads its sizes: one code path for every prediction.
 */
import type { Checkpoint, CheckpointTensor } from './checkpoint.js';
import { QuantkitError } from './errors.js';
import { isKernelFloat, shapeElements } from './safetensors/dtypes.js';
import { ggufFormat, ggufRawFormat } from './formats/gguf.js';
import { GGUF_FILE_TYPES, LLAMA_CPP_FTYPES, isLlamaCppFileType } from './formats/gguf-mixes.js';
import { packedSafetensorsFormat } from './formats/packed-safetensors.js';
import type { GenericDecision, OutputFormat, Plan, PlanEntry, Treatment } from './formats/format.js';
import { encodingOfScheme } from './formats/types/index.js';
import { imatrixValues, readImatrixFile } from './formats/imatrix-file.js';
import { addon } from './native.js';
import { totalmem } from 'node:os';
import { autoCalibrationRefusal } from './eval/llama.js';
import { type CalibrationOptions, type FormatName, type ImportanceMatrix, type QuantizeOptions, type ResolvedOptions, QUANT_METHODS, autoZeroPoint, usesGptq } from './options.js';

export * from './options.js';
export { matrixView, type MatrixView, type Treatment, type PlanEntry, type Plan, type GenericDecision, type Request } from './formats/format.js';
export { GGUF_FILE_TYPES, type GgufFileType } from './formats/gguf-mixes.js';
import { ONNX_DTYPES } from './formats/onnx/dtypes.js';
import { onnxFormat } from './formats/onnx/onnx-format.js';

export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export function resolveOptions(o: QuantizeOptions): ResolvedOptions {
  const usage = (m: string) => new QuantkitError('ERR_USAGE', m);
  if (o.bits !== 4 && o.bits !== 8) throw usage(`--bits must be 4 or 8 (got ${String(o.bits)})`);
  const groupSize = o.groupSize ?? 32;
  if (groupSize !== 'row' && !(Number.isSafeInteger(groupSize) && groupSize > 0))
    throw usage(`--group-size must be a positive integer or 'row' (got ${String(groupSize)})`);
  const mode = o.mode ?? 'sym';
  if (mode !== 'sym' && mode !== 'asym') throw usage(`mode must be sym or asym (got ${String(mode)})`);
  const quantMethod = o.quantMethod ?? 'rtn';
  if (!QUANT_METHODS.includes(quantMethod)) throw usage(`--method must be one of ${QUANT_METHODS.join(', ')} (got ${String(quantMethod)})`);
  if (usesGptq(quantMethod) && mode === 'asym') throw usage(`--method ${quantMethod} covers symmetric codes: use --sym`);
  if (quantMethod === 'hqq' && mode !== 'asym') throw usage('--method hqq fits a zero point: use --asym (GGUF Q4_1)');
  checkCalibration(o.calibration);
  const format = o.format ?? 'safetensors';
  if (format !== 'safetensors' && format !== 'gguf' && format !== 'gguf-raw' && format !== 'onnx') throw usage(`--format must be safetensors, gguf, gguf-raw or onnx (got ${String(format)})`);
  if (o.onnxDtype !== undefined && (format !== 'onnx' || !ONNX_DTYPES.includes(o.onnxDtype))) throw usage(`--onnx-dtype takes ${ONNX_DTYPES.join(', ')} with --format onnx (got ${String(o.onnxDtype)})`);
  if (o.ggufType !== undefined && !GGUF_FILE_TYPES.includes(o.ggufType)) throw usage(`--gguf-type must be one of ${GGUF_FILE_TYPES.join(', ')} (got ${String(o.ggufType)})`);
  if (o.ggufType !== undefined && format === 'safetensors') throw usage('--gguf-type applies to --format gguf (or gguf-raw)');
  if (o.pure && !isLlamaCppFileType(o.ggufType)) throw usage('--pure applies to --gguf-type with one of llama.cpp\'s file types (every matrix in that type, as llama-quantize --pure)');
  const bitsFor = (o.bitsFor ?? []).map((rule) => {
    const m = /^(.+)=(\d+)$/.exec(rule);
    if (!m || (m[2] !== '4' && m[2] !== '8')) throw usage(`--bits-for takes GLOB=4 or GLOB=8 (got '${rule}')`);
    return { glob: m[1]!, re: globToRegExp(m[1]!), bits: Number(m[2]) as 4 | 8 };
  });
  if (o.scaleDtype !== undefined && !['F16', 'BF16', 'F32'].includes(o.scaleDtype))
    throw usage(`--scale-dtype must be F16, BF16 or F32 (got ${String(o.scaleDtype)})`);
  if (o.maxShardSize !== undefined && !(Number.isSafeInteger(o.maxShardSize) && o.maxShardSize > 0))
    throw usage(`--max-shard-size must be a positive number of bytes`);
  if (o.imatrix !== undefined && format !== 'gguf') throw usage('--imatrix applies to --format gguf: its entries are named as llama.cpp names the tensors (gguf-raw keeps the checkpoint\'s names)');
  if (o.imatrix !== undefined && quantMethod !== 'rtn') throw usage(`--imatrix is llama-quantize's own method: leave --method at rtn (got ${quantMethod})`);
  const r: ResolvedOptions = { bits: o.bits, groupSize, mode, ...(o.mode === undefined && quantMethod === 'auto' ? { autoMode: true } : {}), quantMethod, format, keep: o.keep ?? [], bitsFor, scaleDtype: o.scaleDtype, maxShardSize: o.maxShardSize, ggufType: o.ggufType, onnxDtype: o.onnxDtype, pure: isLlamaCppFileType(o.ggufType) ? (o.pure ?? LLAMA_CPP_FTYPES[o.ggufType].pureByDefault) : false, ...(o.imatrix !== undefined ? { imatrix: o.imatrix } : {}) };
  formatFor(format).checkOptions(r);
  return r;
}

/** Reads an --imatrix file into the weights llama-quantize would take from it. */
export async function loadImportanceMatrix(file: string): Promise<ImportanceMatrix> {
  const f = await readImatrixFile(file);
  return { file, values: imatrixValues(f), datasets: f.datasets, chunkCount: f.chunkCount };
}

/** The --imatrix weights of the plan's 'imatrix' tensors, by checkpoint tensor name (TensorQuantizer's key). */
export function imatrixWeights(plan: Plan): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const im = plan.options.importanceMatrix;
  for (const e of plan.entries) {
    const t = e.treatment;
    if (!im || t.kind !== 'quantize' || t.spec.method !== 'imatrix') continue;
    out.set(e.tensor.name, im.values.get(t.outputName ?? e.tensor.name)!);
  }
  return out;
}

/** Refuses calibration settings out of range (ERR_USAGE). */
export function checkCalibration(c: CalibrationOptions | undefined): void {
  if (!c) return;
  const positive = (v: number | undefined, name: string, max: number) => {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1 && v <= max)) throw new QuantkitError('ERR_USAGE', `${name} must be an integer from 1 to ${max} (got ${String(v)})`);
  };
  positive(c.samples, '--calibration-samples', 65536);
  positive(c.length, '--calibration-length', 65536);
  if (c.length !== undefined && c.length < 2) throw new QuantkitError('ERR_USAGE', '--calibration-length must be at least 2 (BOS and one generated token)');
  if (c.seed !== undefined && !(Number.isSafeInteger(c.seed) && c.seed >= 0)) throw new QuantkitError('ERR_USAGE', `--seed must be a non-negative integer (got ${String(c.seed)})`);
  if (c.damp !== undefined && !(Number.isFinite(c.damp) && c.damp >= 0)) throw new QuantkitError('ERR_USAGE', `--damp must be a non-negative number (got ${String(c.damp)})`);
}

export function formatFor(name: FormatName): OutputFormat {
  return name === 'gguf' ? ggufFormat : name === 'gguf-raw' ? ggufRawFormat : name === 'onnx' ? onnxFormat : packedSafetensorsFormat;
}

export function genericDecision(t: CheckpointTensor, o: ResolvedOptions): GenericDecision {
  if (o.keep.some((g) => globToRegExp(g).test(t.name))) return { keep: 'matches --keep' };
  if (!isKernelFloat(t.dtype)) return { keep: `${t.dtype} is not a floating-point weight` };
  if (t.shape.length < 2) return { keep: '1-D (norm or bias)' };
  if (t.bytes === 0) return { keep: 'empty tensor' };
  const rule = o.bitsFor.find((r) => r.re.test(t.name));
  return rule ? { bits: rule.bits, explicit: true } : { bits: o.bits, explicit: false };
}

/** Plans a quantization run: resolves the options, then asks the output format for exact sizes. */
export async function planQuantization(ckpt: Checkpoint, options: QuantizeOptions): Promise<Plan> {
  return planResolved(ckpt, resolveOptions(options));
}

export async function planResolved(ckpt: Checkpoint, o: ResolvedOptions): Promise<Plan> {
  if (o.imatrix !== undefined && !o.importanceMatrix) o = { ...o, importanceMatrix: await loadImportanceMatrix(o.imatrix) };
  if (ckpt.config && 'quantization_config' in ckpt.config)
    throw new QuantkitError('ERR_PLAN', 'this checkpoint is already quantized (config.json has quantization_config); start from the original weights', { file: ckpt.dir });
  // --method auto calibrates where the forward pass covers the model, its f32 copy fits in memory and
  // the model is small enough for calibration to take seconds (src/eval/llama.ts).
  if (o.quantMethod === 'auto') o = { ...o, calibrated: !ckpt.shapesOnly && autoCalibrationRefusal(ckpt, totalmem()) === undefined };
  const format = formatFor(o.format);
  const entries: PlanEntry[] = ckpt.tensors.map((tensor) => {
    const treatment = autoLabel(format.decide(tensor, genericDecision(tensor, o), o, ckpt), o);
    return { tensor, treatment, outputBytes: format.tensorBytes(tensor, treatment) };
  });
  const files = await format.layout(entries, ckpt, o);
  const q = entries.filter((e) => e.treatment.kind === 'quantize');
  const quantizedParams = q.reduce((s, e) => s + shapeElements(e.tensor.shape)!, 0);
  const quantizedOutputBytes = q.reduce((s, e) => s + e.outputBytes, 0);
  return {
    model: ckpt.dir,
    config: ckpt.config,
    aliases: ckpt.aliases,
    format: o.format,
    options: o,
    entries,
    files,
    sourceBytes: ckpt.totalBytes,
    outputBytes: files.reduce((s, f) => s + f.bytes, 0),
    quantizedParams,
    quantizedOutputBytes,
    bitsPerQuantizedWeight: quantizedParams ? (quantizedOutputBytes * 8) / quantizedParams : 0,
  };
}

/** --method auto: the label names auto, not the candidate its kernel spec carries (the rows are chosen by measurement). */
function autoLabel(t: Treatment, o: ResolvedOptions): Treatment {
  if (o.quantMethod !== 'auto' || t.kind !== 'quantize' || !t.spec.method || !/ (gptq|search)$/.test(t.label)) return t;
  return { ...t, label: t.label.replace(/ (gptq|search)$/, ' auto') };
}

/**
 * Refuses, before anything is read or written, a plan whose encodings this build of the addon cannot
 * make (a kernel scheme it lacks, or a method its kernels refuse), and one whose layout the addon would
 * size differently from the format registry. `plan`, `--dry-run` and `estimate` need no kernels.
 */
export function checkKernels(plan: Plan): void {
  const seen = new Set<string>();
  for (const e of plan.entries) {
    const t = e.treatment;
    if (t.kind !== 'quantize') continue;
    const key = `${JSON.stringify(t.spec)} ${t.view.cols}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const where = { file: e.tensor.file, tensor: e.tensor.name };
    const cannot = (why: string) => new QuantkitError('ERR_NATIVE', `this build of the addon cannot write ${t.label} (kernel scheme ${t.spec.scheme}, method ${t.spec.method ?? 'rtn'}): ${why}; \`quantkit plan\` and \`estimate\` still give its exact size`, where);
    let layout;
    try {
      layout = addon().layout({ spec: t.spec, cols: t.view.cols });
    } catch (err) {
      // The addon refuses a scheme or method name it does not know with a TypeError (ERR_NATIVE_ARGUMENT).
      if ((err as { code?: string }).code !== 'ERR_NATIVE_ARGUMENT') throw err;
      throw cannot(/spec\.scheme/.test((err as Error).message) ? `it has no ${encodingOfScheme(t.spec.scheme).name} kernels` : (err as Error).message);
    }
    if (layout.error) throw cannot(layout.error);
    // ggml blocks are stored as the kernels write them (compressed-tensors repacks zero points and adds a shape).
    const native = layout.dataBytesPerRow * t.view.rows;
    if (encodingOfScheme(t.spec.scheme).family === 'ggml' && native !== e.outputBytes)
      throw new QuantkitError('ERR_NATIVE', `the addon lays out ${t.label} in ${native} bytes, the format registry in ${e.outputBytes}`, where);
  }
}

/**
 * True where auto gives any quantized tensor a zero point (options.ts autoZeroPoint): the file is then
 * not in the resolved mode alone (auto keeps the MLP's gate/up symmetric).
 */
export function planAddsZeroPoints(plan: Plan): boolean {
  return plan.entries.some((e) => e.treatment.kind === 'quantize' && autoZeroPoint(e.tensor.name, plan.options));
}

/**
 * The plan's mode as a person reads it: the resolved mode, or 'sym+asym (auto)' where auto gives some
 * tensors zero points, so that a report does not call such a file symmetric.
 */
export function planModeLabel(plan: Plan): string {
  return planAddsZeroPoints(plan) ? 'sym+asym (auto)' : plan.options.mode;
}
