/** The yargs options shared by `quantize` and `plan`, and their conversion into library options. */
import type { Argv } from 'yargs';
import { type CalibrationOptions, type FormatName, type GgufFileType, GGUF_FILE_TYPES, type QuantizeOptions, QUANT_METHODS, type QuantMethod, DEFAULT_METHOD, calibrates } from '../plan.js';
import type { FloatDtype } from '../safetensors/dtypes.js';
import { QuantkitError } from '../errors.js';
import { ONNX_DTYPES, type OnnxDtype } from '../formats/onnx/dtypes.js';
import { parseSize } from '../units.js';

/** What `<model>` may be, for quantize and plan. */
export const MODEL_ARGUMENT =
  'model directory (config.json + model.safetensors, or shards with their index), diffusers pipeline folder (model_index.json), single .safetensors file, or hub id org/name[@revision]';

/** How --keep and --bits-for globs read, shared by every command that takes them. */
export const GLOB_HELP = "* any run of characters, ? one; in a diffusers pipeline COMPONENT/GLOB names one component's tensors (unet/*attn*)";

export function withQuantizeOptions<T>(y: Argv<T>) {
  return withCalibrationOptions(y)
    .positional('model', { type: 'string', demandOption: true, describe: MODEL_ARGUMENT })
    .option('bits', { type: 'number', choices: [4, 8], default: 4, describe: 'bits per quantized weight' })
    .option('group-size', { type: 'string', default: '32', describe: "weights per scale: 32, 64, 128, ... or 'row' (one scale per output channel); GGUF blocks are 32" })
    .option('format', { type: 'string', choices: ['safetensors', 'gguf', 'gguf-raw', 'onnx'], default: 'safetensors', describe: 'output format: safetensors (compressed-tensors), gguf (runs in llama.cpp), gguf-raw (container, any architecture), onnx (ONNX Runtime / transformers.js folder)' })
    .option('onnx-dtype', { type: 'string', choices: ONNX_DTYPES, describe: 'ONNX variant, as transformers.js names it: fp32, fp16, q8, q4, q4f16 (default: q4 or q8 from --bits)' })
    .option('gguf-type', { type: 'string', choices: GGUF_FILE_TYPES, describe: "GGUF file type: llama-quantize's (Q4_K_M, Q5_K_M, Q6_K, ... with its per-tensor mix; F16, Q8_0, Q4_0, ... uniform) or mobile (default: every matrix Q4_0/Q8_0/Q4_1 from --bits/--asym)" })
    .option('pure', { type: 'boolean', describe: "with --gguf-type: every matrix in the file type's own type, as llama-quantize --pure (default for F32..Q5_1; --no-pure: llama-quantize's output tensor rule for those)" })
    // No yargs default: the default depends on --imatrix (toQuantizeOptions), which a default value would hide.
    .option('method', { type: 'string', choices: QUANT_METHODS, defaultDescription: `${DEFAULT_METHOD} (rtn with --imatrix)`, describe: 'scale selection: auto (default: per row the best of rtn, search and gptq by measured output error, tied embedding/head chosen by the model\'s own output; IQ4_NL in GGUF; the search where the forward pass does not cover the model), rtn (round to nearest, ggml reference, bit-exact), search (weighted least-squares scale search), iq4nl (GGUF IQ4_NL non-linear 4-bit code), gptq / iq4nl-gptq (the same with GPTQ error feedback, calibrated on text the model writes itself; Llama family), hqq (GGUF --asym: Q4_1 minimum by HQQ)' })
    .option('sym', { type: 'boolean', describe: 'symmetric quantization (default; --method auto in packed safetensors without --sym adds zero points to every matrix but the MLP gate/up projections)' })
    .option('asym', { type: 'boolean', describe: 'asymmetric quantization with a zero point (GGUF: Q4_1)' })
    .option('imatrix', { type: 'string', requiresArg: true, describe: "GGUF: llama.cpp's importance matrix (from `quantkit imatrix` or llama-imatrix; GGUF or legacy .dat), used as llama-quantize --imatrix uses it" })
    .option('keep', { type: 'string', array: true, requiresArg: true, describe: `keep tensors matching GLOB unquantized; repeatable (${GLOB_HELP})` })
    .option('bits-for', { type: 'string', array: true, requiresArg: true, describe: 'GLOB=BITS: mixed precision, e.g. "*down_proj*=8"; repeatable, first matching rule wins' })
    .option('scale-dtype', { type: 'string', choices: ['F16', 'BF16', 'F32'], describe: "scale dtype of safetensors output (default: the model's torch_dtype)" })
    .option('max-shard-size', { type: 'string', describe: 'split safetensors output into shards of at most SIZE: 500MB, 2GB (10^9 bytes), 1GiB (2^30 bytes)' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' })
    .group(['bits', 'group-size', 'format', 'onnx-dtype', 'gguf-type', 'pure', 'method', 'imatrix', 'sym', 'asym', 'keep', 'bits-for', 'scale-dtype', 'max-shard-size'], 'Quantization:')
    .group(['calibration-samples', 'calibration-length', 'seed', 'damp'], 'GPTQ calibration (--method auto, gptq, iq4nl-gptq):');
}

export interface QuantizeArgs extends CalibrationArgs {
  model: string;
  bits: number;
  'group-size': string;
  format: string;
  'gguf-type'?: string;
  pure?: boolean;
  'onnx-dtype'?: string;
  method?: string;
  sym?: boolean;
  asym?: boolean;
  keep?: string[];
  'bits-for'?: string[];
  'scale-dtype'?: string;
  'max-shard-size'?: string;
  imatrix?: string;
}

export function checkThreads(t: number | undefined): number | undefined {
  if (t !== undefined && !(Number.isInteger(t) && t >= 1 && t <= 256)) throw new QuantkitError('ERR_USAGE', `--threads must be an integer from 1 to 256 (got ${t})`);
  return t;
}

export function toQuantizeOptions(a: QuantizeArgs): QuantizeOptions {
  if (a.sym && a.asym) throw new QuantkitError('ERR_USAGE', '--sym and --asym exclude each other');
  const g = a['group-size'];
  const groupSize = g === 'row' ? 'row' : Number(g);
  let maxShardSize: number | undefined;
  if (a['max-shard-size'] !== undefined) {
    try {
      maxShardSize = parseSize(a['max-shard-size']);
    } catch (e) {
      throw new QuantkitError('ERR_USAGE', `--max-shard-size: ${(e as Error).message}`);
    }
  }
  // --imatrix is llama-quantize's own method: the default is then rtn, as llama-quantize quantizes.
  const quantMethod = (a.method ?? (a.imatrix !== undefined ? 'rtn' : DEFAULT_METHOD)) as QuantMethod;
  return {
    bits: a.bits as 4 | 8,
    groupSize,
    // Without --sym/--asym the library decides (symmetric, but auto's zero points where they pay: options.ts autoZeroPoint).
    ...(a.asym ? { mode: 'asym' as const } : a.sym ? { mode: 'sym' as const } : {}),
    quantMethod,
    format: a.format as FormatName,
    ...(a['gguf-type'] !== undefined ? { ggufType: a['gguf-type'] as GgufFileType } : {}),
    ...(a.pure !== undefined ? { pure: a.pure } : {}),
    ...(a['onnx-dtype'] !== undefined ? { onnxDtype: a['onnx-dtype'] as OnnxDtype } : {}),
    ...(a.keep ? { keep: a.keep } : {}),
    ...(a['bits-for'] ? { bitsFor: a['bits-for'] } : {}),
    ...(a['scale-dtype'] ? { scaleDtype: a['scale-dtype'] as FloatDtype } : {}),
    ...(maxShardSize !== undefined ? { maxShardSize } : {}),
    ...(a.imatrix !== undefined ? { imatrix: a.imatrix } : {}),
    ...calibrationOptions(a, calibrates(quantMethod)),
  };
}

/** The yargs options of GPTQ's calibration (quantize, plan, estimate and report). */
export function withCalibrationOptions<T>(y: Argv<T>) {
  return y
    .option('calibration-samples', { type: 'number', describe: 'sequences the model writes to calibrate on (default 64)' })
    .option('calibration-length', { type: 'number', describe: 'tokens per calibration sequence, BOS included (default 256)' })
    .option('seed', { type: 'number', describe: 'sampling seed of the calibration text (default 0)' })
    .option('damp', { type: 'number', describe: "added to the Hessian's diagonal, as a fraction of its mean (default 0.1)" });
}

export interface CalibrationArgs {
  'calibration-samples'?: number;
  'calibration-length'?: number;
  seed?: number;
  damp?: number;
}

/** The --calibration-* / --seed / --damp flags, only where given (plan.ts checks their values). */
export function calibrationOptions(a: CalibrationArgs, gptq: boolean): { calibration?: CalibrationOptions } {
  const c: CalibrationOptions = {};
  if (a['calibration-samples'] !== undefined) c.samples = a['calibration-samples'];
  if (a['calibration-length'] !== undefined) c.length = a['calibration-length'];
  if (a.seed !== undefined) c.seed = a.seed;
  if (a.damp !== undefined) c.damp = a.damp;
  if (Object.keys(c).length === 0) return {};
  if (!gptq) throw new QuantkitError('ERR_USAGE', '--calibration-samples, --calibration-length, --seed and --damp apply to --method auto, gptq or iq4nl-gptq');
  return { calibration: c };
}
