/**
 * The options a quantization run takes (library and CLI alike) and their resolved form, with the
 * quantization methods and how each maps onto the kernels. The planner (plan.ts) resolves them; the
 * output formats read them (which is why they live below both).
 */
import type { KernelMethod, KernelSpec } from './native.js';
import type { FloatDtype } from './safetensors/dtypes.js';
import type { GgufFileType } from './formats/gguf-mixes.js';
import type { OnnxDtype } from './formats/onnx/dtypes.js';

export type FormatName = 'safetensors' | 'gguf' | 'gguf-raw' | 'onnx';
export type Mode = 'sym' | 'asym';
/**
 * How scales are chosen: 'rtn' from each group's largest value (ggml's reference quantizers exactly);
 * 'search' a grid of scales refitted by least squares, weighted by a per-column importance estimated
 * from the weights (src/quant/importance.ts); 'iq4nl' the same search over llama.cpp's non-linear
 * IQ4_NL code (GGUF, 4-bit symmetric tensors); 'gptq' and 'iq4nl-gptq' add GPTQ's error feedback,
 * with input statistics from text the model generates itself (src/quant/calibration.ts; symmetric
 * codes); 'hqq' fits Q4_1's minimum by HQQ's half-quadratic solver (GGUF --asym). 'auto' (the
 * default) quantizes each tensor with RTN, the search and GPTQ and keeps the one with the lowest
 * measured error (src/quant/auto.ts); where the reference forward pass does not cover the model it is
 * the search, and says so. Every method writes standard layouts.
 */
export type QuantMethod = 'auto' | 'rtn' | 'search' | 'iq4nl' | 'gptq' | 'iq4nl-gptq' | 'hqq';
export const QUANT_METHODS: QuantMethod[] = ['auto', 'rtn', 'search', 'iq4nl', 'gptq', 'iq4nl-gptq', 'hqq'];
/** The CLI's method when none is named (the library's `quantMethod` defaults to 'rtn': bit-exact ggml output). */
export const DEFAULT_METHOD: QuantMethod = 'auto';

/** True for the methods that write llama.cpp's IQ4_NL code in place of Q4_0. */
export function usesIq4nl(m: QuantMethod): boolean {
  return m === 'iq4nl' || m === 'iq4nl-gptq';
}

/** True for the methods that calibrate on generated text and run GPTQ. */
export function usesGptq(m: QuantMethod): boolean {
  return m === 'gptq' || m === 'iq4nl-gptq';
}

/** True for the methods that calibrate on the model's own text where the forward pass covers it (auto falls back without). */
export function calibrates(m: QuantMethod): boolean {
  return usesGptq(m) || m === 'auto';
}

/**
 * The kernel method a tensor gets: GPTQ covers every scheme but ggml's Q4_1 (which keeps the search;
 * compressed-tensors' asymmetric groups have GPTQ under auto, whose zero points fit the grid, while
 * `--method gptq --asym` stays refused).
 * For 'auto' it is the most capable candidate the scheme takes (GPTQ, else the search); the quantizer
 * measures it against the simpler ones, RTN included (src/quant/tensor-quantizer.ts).
 * With --imatrix (`imatrix`: whether the file has an entry for the tensor), llama.cpp's 'imatrix' method,
 * or 'rtn' for a tensor without an entry, as llama-quantize quantizes it.
 */
export function kernelMethod(m: QuantMethod, scheme: KernelSpec['scheme'], imatrix?: boolean): KernelMethod {
  if (imatrix !== undefined) return imatrix ? 'imatrix' : 'rtn';
  if (m === 'rtn') return 'rtn';
  if (m === 'hqq') return scheme === 'q4_1' ? 'hqq' : 'search';
  return calibrates(m) && scheme !== 'q4_1' ? 'gptq' : 'search';
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
  /**
   * 'sym' or 'asym' for every quantized tensor. Left out with --method auto, packed safetensors with
   * calibration: zero points where they pay (autoZeroPoint).
   */
  mode?: Mode;
  /** Scale selection (default 'rtn'; the CLI's default is DEFAULT_METHOD, 'auto'). */
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
  /**
   * GGUF only: the file's type, overriding bits/mode: one of llama-quantize's (its per-tensor mix; F16
   * for an unquantized runnable file) or quantkit's 'mobile' mix (src/formats/gguf-mixes.ts).
   */
  ggufType?: GgufFileType;
  /**
   * With ggufType: every matrix in the file type's own ggml type, as llama-quantize --pure. Default: true
   * for the single-type files (F32 ... Q5_1), false for llama.cpp's mixes (K-quants, IQ types).
   */
  pure?: boolean;
  /** ONNX only: transformers.js's dtype (fp32, fp16, q8, q4, q4f16), overriding bits (default q4/q8 from --bits). */
  onnxDtype?: OnnxDtype;
  /** --method auto / gptq / iq4nl-gptq: calibration settings. */
  calibration?: CalibrationOptions;
  /**
   * GGUF only: llama.cpp's importance matrix file (GGUF from llama-imatrix or `quantkit imatrix`, or the
   * legacy .dat), used as llama-quantize --imatrix uses it: every tensor with an entry whose type's
   * quantizer takes one (Q4_0 ... Q5_1, the K-quants, IQ4_NL) is quantized with it.
   */
  imatrix?: string;
}

/** A loaded --imatrix: the per-column weights llama-quantize would use, by GGUF tensor name. */
export interface ImportanceMatrix {
  file: string;
  values: Map<string, Float32Array>;
  datasets: string[];
  chunkCount: number;
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
  pure: boolean;
  /** --imatrix: the file; the planner loads it into `importanceMatrix`. */
  imatrix?: string;
  importanceMatrix?: ImportanceMatrix;
  /**
   * --method auto only: whether the run calibrates (the forward pass covers the model, it fits in memory
   * and has at most AUTO_CALIBRATION_MAX_PARAMS parameters: src/eval/llama.ts). GGUF then writes IQ4_NL in place of Q4_0; without calibration auto stays on Q4_0's fast search.
   */
  calibrated?: boolean;
  /** --method auto without --sym/--asym: the mode is chosen per tensor where the format allows (autoZeroPoint). */
  autoMode?: boolean;
}

/**
 * --method auto, calibrated, in packed safetensors, mode left to it: asymmetric groups (an int4 zero
 * point per group, compressed-tensors' `symmetric: false` config group; 4.625 bits/weight at group 32
 * with F16 scales) for every matrix except the MLP's input projections (gate/up), which stay
 * symmetric, so that the file stays within 4.6 bits/weight (gate/up hold 40-60% of a Llama block's
 * weights). Measured (docs/quality.md): tinystories-656k KL 0.0637 -> 0.0500 (every matrix asym
 * 0.0498 at 4.63 bits/weight; attention or down_proj left symmetric instead 0.054-0.056), stories260k
 * 0.0799 -> 0.0724; gate/up gain least from a zero point.
 */
export function autoZeroPoint(name: string, o: Pick<ResolvedOptions, 'quantMethod' | 'calibrated' | 'autoMode' | 'format'>): boolean {
  return o.quantMethod === 'auto' && o.calibrated === true && o.autoMode === true && o.format === 'safetensors' && !/\.mlp\.(gate|up)_proj\.weight$/.test(name);
}

/** True where a plan writes llama.cpp's IQ4_NL code in place of Q4_0 (the IQ4_NL methods, and auto with calibration). */
export function writesIq4nl(o: Pick<ResolvedOptions, 'quantMethod' | 'calibrated'>): boolean {
  return usesIq4nl(o.quantMethod) || (o.quantMethod === 'auto' && o.calibrated === true);
}
