/**
 * The planner: decides what happens to each tensor (quantized with which scheme, or kept and why) and,
 * through the output format, how many bytes every output file will have. `quantize` executes a plan,
 * `plan`/`--dry-run` prints it, and estimation reads its sizes: one code path for every prediction.
 */
import type { Checkpoint, CheckpointTensor, ModelConfig } from './checkpoint.js';
import { QuantkitError } from './errors.js';
import type { KernelMethod, KernelSpec } from './native.js';
import { type Dtype, type FloatDtype, isKernelFloat, shapeElements } from './safetensors/dtypes.js';
import { ggufFormat, ggufRawFormat } from './formats/gguf.js';
import type { TensorTransform } from './formats/gguf-arch.js';
import { packedSafetensorsFormat } from './formats/packed-safetensors.js';
import type { OutputFormat, PlannedFile } from './formats/format.js';
import { ONNX_DTYPES, type OnnxDtype } from './formats/onnx/dtypes.js';
import { onnxFormat } from './formats/onnx/onnx-format.js';

export type FormatName = 'safetensors' | 'gguf' | 'gguf-raw' | 'onnx';
/** GGUF tensor types a whole file can be asked for; 'mobile' is quantkit's mix (see formats/gguf.ts). */
export type GgufFileType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_1' | 'mobile';
export const GGUF_FILE_TYPES: GgufFileType[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'mobile'];
export type Mode = 'sym' | 'asym';
/**
 * How scales are chosen: 'rtn' from each group's largest value (ggml's reference quantizers exactly);
 * 'search' a grid of scales refitted by least squares, weighted by a per-column importance estimated
 * from the weights (src/quant/importance.ts); 'iq4nl' the same search over llama.cpp's non-linear
 * IQ4_NL code (GGUF, 4-bit symmetric tensors); 'gptq' and 'iq4nl-gptq' add GPTQ's error feedback,
 * with input statistics from text the model generates itself (src/quant/calibration.ts; symmetric
 * codes); 'hqq' fits Q4_1's minimum by HQQ's half-quadratic solver (GGUF --asym). Every method writes
 * standard layouts.
 */
export type QuantMethod = 'rtn' | 'search' | 'iq4nl' | 'gptq' | 'iq4nl-gptq' | 'hqq';
export const QUANT_METHODS: QuantMethod[] = ['rtn', 'search', 'iq4nl', 'gptq', 'iq4nl-gptq', 'hqq'];

/** True for the methods that write llama.cpp's IQ4_NL code in place of Q4_0. */
export function usesIq4nl(m: QuantMethod): boolean {
  return m === 'iq4nl' || m === 'iq4nl-gptq';
}

/** True for the methods that calibrate on generated text and run GPTQ. */
export function usesGptq(m: QuantMethod): boolean {
  return m === 'gptq' || m === 'iq4nl-gptq';
}

/** The kernel method a tensor gets: GPTQ covers the symmetric schemes; asymmetric ones keep the search. */
export function kernelMethod(m: QuantMethod, scheme: KernelSpec['scheme']): KernelMethod {
  if (m === 'rtn') return 'rtn';
  if (m === 'hqq') return scheme === 'q4_1' ? 'hqq' : 'search';
  return usesGptq(m) && scheme !== 'q4_1' && scheme !== 'int_asym' ? 'gptq' : 'search';
}

/** GPTQ's knobs: the self-generated calibration text and the Hessian damping (src/quant/calibration.ts). */
export interface CalibrationOptions {
  /** Sequences the model writes (default 64). */
  samples?: number;
  /** Tokens per sequence, BOS included (default 256; at most the model's context). */
  length?: number;
  /** Sampling seed (default 0): the same seed gives the same text and the same output. */
  seed?: number;
  /** Added to the Hessian's diagonal, as a fraction of its mean (default 0.1). */
  damp?: number;
}
export type GroupSize = number | 'row';

export interface QuantizeOptions {
  /** Default bit width for quantized tensors. */
  bits: 4 | 8;
  /** Weights per scale: 32 (default), 64, 128, any other divisor of the row, or 'row' (per channel). */
  groupSize?: GroupSize;
  mode?: Mode;
  /** Scale selection (default 'rtn'). */
  quantMethod?: QuantMethod;
  format?: FormatName;
  /** Globs (`*` any run of characters, `?` one) of tensors kept in their dtype. */
  keep?: string[];
  /** Mixed precision: `GLOB=BITS` rules, first match wins, e.g. `*down_proj*=8`. */
  bitsFor?: string[];
  /** Scale dtype for packed safetensors (default: the checkpoint's torch_dtype). GGUF always uses F16. */
  scaleDtype?: FloatDtype;
  /** Split safetensors output into shards of at most this many bytes (a single tensor may exceed it). */
  maxShardSize?: number;
  /** GGUF only: the file's type, overriding bits/mode (F16 for an unquantized runnable file, 'mobile' mix). */
  ggufType?: GgufFileType;
  /** ONNX only: transformers.js's dtype (fp32, fp16, q8, q4, q4f16), overriding bits (default q4/q8 from --bits). */
  onnxDtype?: OnnxDtype;
  /** --method gptq / iq4nl-gptq: calibration settings. */
  calibration?: CalibrationOptions;
}

export interface ResolvedOptions {
  bits: 4 | 8;
  groupSize: GroupSize;
  mode: Mode;
  quantMethod: QuantMethod;
  format: FormatName;
  keep: string[];
  bitsFor: { glob: string; re: RegExp; bits: 4 | 8 }[];
  scaleDtype: FloatDtype | undefined;
  maxShardSize: number | undefined;
  ggufType: GgufFileType | undefined;
  onnxDtype: OnnxDtype | undefined;
}

/** A matrix view of a tensor: quantization groups run along `cols`, the contiguous last dimension(s). */
export interface MatrixView {
  rows: number;
  cols: number;
}

/** Where a tensor goes: its name in the output (when the format renames it) and a change made to its values first. */
interface Placement {
  outputName?: string;
  transform?: TensorTransform;
}

export type Treatment =
  | ({ kind: 'quantize'; spec: KernelSpec; view: MatrixView; label: string; note?: string } & Placement)
  | ({ kind: 'keep'; outDtype: Dtype; reason: string } & Placement);

export interface PlanEntry {
  tensor: CheckpointTensor;
  treatment: Treatment;
  /** Bytes this tensor occupies in the output (data of all its output tensors, without headers). */
  outputBytes: number;
}

export interface Plan {
  model: string;
  config: ModelConfig | null;
  /** Tied weights of the checkpoint: absent name -> stored name. */
  aliases: Map<string, string>;
  format: FormatName;
  options: ResolvedOptions;
  entries: PlanEntry[];
  files: PlannedFile[];
  sourceBytes: number;
  outputBytes: number;
  quantizedParams: number;
  quantizedOutputBytes: number;
  /** Average stored bits per quantized weight, scales and zero points included. */
  bitsPerQuantizedWeight: number;
}

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
  if (o.ggufType !== undefined && format !== 'gguf') throw usage('--gguf-type applies to --format gguf');
  const bitsFor = (o.bitsFor ?? []).map((rule) => {
    const m = /^(.+)=(\d+)$/.exec(rule);
    if (!m || (m[2] !== '4' && m[2] !== '8')) throw usage(`--bits-for takes GLOB=4 or GLOB=8 (got '${rule}')`);
    return { glob: m[1]!, re: globToRegExp(m[1]!), bits: Number(m[2]) as 4 | 8 };
  });
  if (o.scaleDtype !== undefined && !['F16', 'BF16', 'F32'].includes(o.scaleDtype))
    throw usage(`--scale-dtype must be F16, BF16 or F32 (got ${String(o.scaleDtype)})`);
  if (o.maxShardSize !== undefined && !(Number.isSafeInteger(o.maxShardSize) && o.maxShardSize > 0))
    throw usage(`--max-shard-size must be a positive number of bytes`);
  const r: ResolvedOptions = { bits: o.bits, groupSize, mode, quantMethod, format, keep: o.keep ?? [], bitsFor, scaleDtype: o.scaleDtype, maxShardSize: o.maxShardSize, ggufType: o.ggufType, onnxDtype: o.onnxDtype };
  formatFor(format).checkOptions(r);
  return r;
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

/** Rows and columns of the matrix a tensor is quantized as (conv weights: one row per output channel). */
export function matrixView(shape: readonly number[]): MatrixView {
  const cols = shape.length === 4 ? shape[1]! * shape[2]! * shape[3]! : shape[shape.length - 1]!;
  return { rows: shapeElements(shape)! / cols, cols };
}

/** What the generic rules say about a tensor before the format has its word. */
export interface Request {
  bits: 4 | 8;
  /** True when a --bits-for rule named this tensor explicitly. */
  explicit: boolean;
}

export type GenericDecision = { keep: string } | Request;

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
  if (ckpt.config && 'quantization_config' in ckpt.config)
    throw new QuantkitError('ERR_PLAN', 'this checkpoint is already quantized (config.json has quantization_config); start from the original weights', { file: ckpt.dir });
  const format = formatFor(o.format);
  const entries: PlanEntry[] = ckpt.tensors.map((tensor) => {
    const treatment = format.decide(tensor, genericDecision(tensor, o), o, ckpt);
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
