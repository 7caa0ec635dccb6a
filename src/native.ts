/**
 * The one typed door to the C++ addon. Every native function is declared here (the whole native
 * surface in one place); the addon itself validates its arguments again and throws TypeErrors with
 * code ERR_NATIVE_ARGUMENT.
 */
import { createRequire } from 'node:module';
import { QuantkitError } from './errors.js';
import { packageRoot } from './package-root.js';
import type { FloatDtype } from './safetensors/dtypes.js';

/**
 * Kernel schemes: ggml's block types (32-weight Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/IQ4_NL, 256-weight K-quants and
 * IQ4_XS/IQ2_XXS) and compressed-tensors' symmetric/asymmetric ints. The format registry
 * (src/formats/types/) names the scheme of every encoding; which ones this build of the addon implements,
 * `addon().layout` says (quantize checks before it starts: see checkKernels in plan.ts).
 */
export type KernelScheme =
  | 'q8_0' | 'q4_0' | 'q4_1' | 'iq4_nl' | 'q5_0' | 'q5_1' | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'iq4_xs' | 'iq2_xxs'
  | 'int_sym' | 'int_asym';

/**
 * How a group's scale is chosen: 'rtn' from its largest value (ggml's reference quantizers exactly; for
 * IQ4_NL, Q5_0/Q5_1 and the K-quants llama.cpp's quantizer without an importance matrix, byte for byte),
 * 'search' from a grid of candidates refitted by least squares, weighted by an optional per-column
 * importance (native/src/kernels/search.h); 'gptq' the search with GPTQ's error feedback across columns
 * (native/src/gptq/gptq.h; through gptqQuantize only); 'hqq' Q4_1's minimum by HQQ's half-quadratic
 * solver; 'imatrix' llama.cpp's quantizer with its importance matrix (`weights`, one value per column,
 * required), byte for byte, on every ggml scheme (Q8_0 ignores it, as llama.cpp does). The block
 * layouts are the same. Q5_0, Q5_1 and the K-quants take 'rtn' and 'imatrix' only.
 */
export type KernelMethod = 'rtn' | 'search' | 'gptq' | 'hqq' | 'imatrix';

export interface KernelSpec {
  scheme: KernelScheme;
  /** 4 or 8 for int_sym/int_asym; the ggml scheme's own width (q8_0 8, q5_* 5, q2_k..q6_k 2..6, else 4). */
  bits: number;
  /** Elements per group (32 for the ggml block schemes, 256 for the K-quants). */
  group: number;
  scaleDtype: FloatDtype;
  /** Default 'rtn'. */
  method?: KernelMethod;
}

export interface QuantizedParts {
  /** ggml blocks, or the packed 32-bit words of compressed-tensors (little-endian). */
  data: Uint8Array;
  /** One scale per group (compressed-tensors only). */
  scales?: Uint8Array;
  /** One signed 8-bit zero point per group, unpacked (asymmetric compressed-tensors only). */
  zeros?: Int8Array;
}

export interface QuantizeStatus {
  nonfinite: number;
  firstNonfinite: number;
  scaleOverflow: number;
  firstOverflowRow: number;
  /** With `measure`: the round trip's error, as errorStats gives it for the (reordered) source and the output. */
  errors?: ErrorSums;
  /** True when `rowOrder` was given and applied (an addon older than rowOrder ignores it and leaves this out). */
  rowOrderApplied?: boolean;
}

export interface ErrorSums {
  sumSqErr: number;
  sumSqRef: number;
  maxAbsErr: number;
  count: number;
  nonfinite: number;
}

export interface LayoutInfo {
  error: string | null;
  dataBytesPerRow: number;
  scaleBytesPerRow: number;
  zeroBytesPerRow: number;
  /** Rows per unit of the kernels' work: per-unit results (error sums) are merged in this unit's order. */
  rowsPerChunk: number;
}

export interface AddonInfo {
  isa: string | null;
  isaError: string | null;
  available: string[];
  /** The CRC-32 implementation crc32() runs: 'pclmul' (x86), 'armv8-crc' (arm64) or 'table'. */
  crc32: string;
  napiVersion: number;
}

interface TensorArgs {
  spec: KernelSpec;
  rows: number;
  cols: number;
  /** Kernel threads for this call (default 1). Calls from several JS tasks share one native pool. */
  threads?: number;
  /**
   * Shared with the kernels while they run: [0] source bytes processed (added by the kernels; read it
   * with Atomics.load for progress), [1] set to 1n (Atomics.store) to cancel; the call then rejects
   * with code ERR_CANCELLED.
   */
  control?: BigInt64Array;
}

export interface Addon {
  /**
   * `weights`: one non-negative importance per column, for method 'search' (optional) and 'imatrix' (required).
   * `rowOrder`: output row r is quantized from source row rowOrder[r] (a permutation of the rows).
   * `measure`: also measure the round trip's error while each chunk is in cache (status.errors).
   * `errorsFrom` (with measure): the sums of the rows before, in an earlier call, that the measurement
   * continues from: a tensor quantized in calls of whole `rowsPerChunk` units gets the sums of one call.
   */
  quantize(args: TensorArgs & { src: Uint8Array; srcDtype: FloatDtype; out: QuantizedParts; weights?: Float32Array; rowOrder?: Int32Array; measure?: boolean; errorsFrom?: ErrorSums }): Promise<QuantizeStatus>;
  dequantize(args: TensorArgs & { parts: QuantizedParts; out: Float32Array }): Promise<void>;
  errorStats(args: TensorArgs & { src: Uint8Array; srcDtype: FloatDtype; parts: QuantizedParts }): Promise<ErrorSums>;
  /**
   * out[j] = sum_i W[j, i]^2 * a[i] per row of the [rows, cols] matrix stored at byte `offset` of the open
   * file `fd` (read by the addon's threads), in double: column i into partial sum i % 8, the eight added
   * pairwise (the importance pre-pass). Rejects with the reason when the file cannot be read that far.
   */
  weightedRowSquaresFile(args: { fd: number; offset: number; srcDtype: FloatDtype; rows: number; cols: number; a: Float32Array; out: Float32Array; threads?: number }): Promise<void>;
  /**
   * out[i] += sum_j W[j, i]^2 over the rows of the [rows, cols] matrix at byte `offset` of the open file
   * `fd`, row after row, each step out[i] = f32(out[i] + w * w) in double (the embedding's column
   * variances of the importance pre-pass).
   */
  columnSquaresFile(args: { fd: number; offset: number; srcDtype: FloatDtype; rows: number; cols: number; out: Float32Array; threads?: number }): Promise<void>;
  layout(args: { spec: KernelSpec; cols: number }): LayoutInfo;
  info(): AddonInfo;
  /** The reference Llama forward pass (native/src/model/llama.h): logits [tokens.length, vocab] into `out`. */
  llamaLogits(args: { config: LlamaForwardConfig; weights: LlamaForwardWeights; tokens: Int32Array; out: Float32Array; threads?: number }): Promise<void>;
  /**
   * `count` sampled sequences of `length` ids into `out`, each starting with `first` (temperature 0:
   * greedy). The same seed gives the same ids for any thread count.
   */
  llamaGenerate(args: { config: LlamaForwardConfig; weights: LlamaForwardWeights; first: number; count: number; length: number; seed: number; temperature: number; out: Int32Array; threads?: number }): Promise<void>;
  /** Sum over tokens of x x^T for every linear layer's input, over the sequences tokens[k*length, (k+1)*length). */
  llamaInputStats(args: { config: LlamaForwardConfig; weights: LlamaForwardWeights; tokens: Int32Array; length: number; out: LlamaInputStats; threads?: number }): Promise<void>;
  /** GPTQ's factor of a cols x cols input Hessian (damped by damp * mean of its diagonal) into `out`. */
  gptqFactor(args: { hessian: Float32Array; cols: number; damp: number; out: Float64Array; threads?: number }): Promise<void>;
  /** quantize with GPTQ's error feedback (spec.method 'gptq', symmetric schemes); `weights` weight the scale search. */
  gptqQuantize(args: TensorArgs & { src: Uint8Array; srcDtype: FloatDtype; out: QuantizedParts; factor: Float64Array; weights?: Float32Array }): Promise<QuantizeStatus>;
  /** A zero-filled buffer of `bytes` in memory of its own, backed by 2 MiB pages where the system allows; null if it cannot be mapped. */
  largeBuffer(args: { bytes: number }): ArrayBuffer | null;
  /** zlib's crc32(crc, data): the running CRC-32 of the bytes before (`crc`, 0 for none) updated with `data`. */
  crc32(args: { data: Uint8Array; crc: number }): number;
}

/** Row-major square matrices, layer after layer: hidden^2 (attnIn, mlpIn, final), (heads*headDim)^2 (oIn), ffn^2 (downIn). */
export interface LlamaInputStats {
  attnIn: Float32Array;
  oIn: Float32Array;
  mlpIn: Float32Array;
  downIn: Float32Array;
  final: Float32Array;
}

export interface LlamaForwardConfig {
  hidden: number;
  ffn: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  normEps: number;
  ropeTheta: number;
}

/** Row-major f32 matrices in Hugging Face orientation ([out, in]). */
export interface LlamaForwardWeights {
  embed: Float32Array;
  finalNorm: Float32Array;
  lmHead: Float32Array;
  layers: { attnNorm: Float32Array; wq: Float32Array; wk: Float32Array; wv: Float32Array; wo: Float32Array; ffnNorm: Float32Array; wGate: Float32Array; wUp: Float32Array; wDown: Float32Array }[];
}

let cached: Addon | undefined;

/**
 * Loads the addon through node-gyp-build: build/Release/quantkit.node when it was built here, else the
 * prebuilt prebuilds/<platform>-<arch>/quantkit.napi.node shipped in the package; or the file named by
 * QUANTKIT_ADDON (the sanitizer build in tests: scripts/build-asan.sh).
 */
export function addon(): Addon {
  if (cached) return cached;
  const root = packageRoot(import.meta.url);
  const require = createRequire(import.meta.url);
  try {
    cached = (process.env.QUANTKIT_ADDON ? require(process.env.QUANTKIT_ADDON) : (require('node-gyp-build') as (dir: string) => unknown)(root)) as Addon;
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'ERR_ISA_UNAVAILABLE') throw new QuantkitError('ERR_USAGE', err.message);
    if (/No native build was found/.test(err.message ?? ''))
      throw new QuantkitError('ERR_NATIVE', `no quantkit addon for ${process.platform}-${process.arch} (no prebuilt binary, none built): run \`npm rebuild quantkit\` with cmake and a C++ compiler installed`);
    throw e;
  }
  return cached;
}

/** Allocates the buffers that hold a quantized rows x cols tensor (from `alloc` when given). */
export function allocateParts(spec: KernelSpec, rows: number, cols: number, alloc: (bytes: number) => Uint8Array = (n) => new Uint8Array(n)): QuantizedParts {
  const l = addon().layout({ spec, cols });
  if (l.error) throw new RangeError(l.error);
  const parts: QuantizedParts = { data: alloc(rows * l.dataBytesPerRow) };
  if (l.scaleBytesPerRow) parts.scales = alloc(rows * l.scaleBytesPerRow);
  if (l.zeroBytesPerRow) {
    const z = alloc(rows * l.zeroBytesPerRow);
    parts.zeros = new Int8Array(z.buffer, z.byteOffset, z.length);
  }
  return parts;
}

/** A fresh control block for `TensorArgs.control`. */
export function newControl(): BigInt64Array {
  return new BigInt64Array(2);
}
