/**
 * The perplexity of a file quantize has just written, next to the original's, on an evaluation text
 * (by default the bundled TinyStories excerpt, the text and protocol `quantkit report` uses): the
 * values come from the bytes on disk, read back with quantkit's own readers and dequantized by the same
 * kernels the runtimes' formats define, so the figure is the written file's and not a re-run of the
 * quantizer. Runs where the reference forward pass covers the model and the model is small enough for
 * the passes to take seconds (the size rule auto's calibration uses); elsewhere it says why not.
 */
import { join } from 'node:path';
import { totalmem } from 'node:os';
import { type Checkpoint, pathExists } from '../checkpoint.js';
import { toFloat32 } from '../convert.js';
import { QuantkitError } from '../errors.js';
import type { ReadBackTensor } from '../formats/format.js';
import { type TensorTransform, ggufArchitecture } from '../formats/gguf-arch.js';
import { addon } from '../native.js';
import { packageRoot } from '../package-root.js';
import { shapeElements } from '../safetensors/dtypes.js';
import { detectFormat, sourceOf } from '../verify.js';
import { AUTO_CALIBRATION_MAX_PARAMS, EVAL_ARCHITECTURES, LlamaModel, calibrationBytes } from './llama.js';
import { Reference, evaluationSequences } from './perplexity.js';
import { Tokenizer } from './tokenizer.js';

/** The evaluation text shipped with quantkit (data/ at the package root, wherever the module or the CLI bundle sits). */
export const BUNDLED_EVAL_TEXT = join(packageRoot(import.meta.url), 'data', 'tinystories-valid-excerpt.txt');

/** Tokens per document, BOS included, as `quantkit report` evaluates by default. */
export const EVAL_MAX_TOKENS = 512;

export interface WrittenEvaluation {
  /** The evaluation text. */
  file: string;
  documents: number;
  /** Tokens predicted (every token after BOS, documents cut at max_tokens). */
  tokens: number;
  max_tokens: number;
  /** Perplexity of the original checkpoint and of the written file, on the same tokens. */
  original_perplexity: number;
  perplexity: number;
  /** KL(original || written) per token, and the share of positions whose most likely token agrees. */
  kl_mean: number;
  top1_agreement: number;
  seconds: number;
}

/** What the report says about the evaluation: the figures, or why there are none. */
export type EvaluationOutcome = WrittenEvaluation | { skipped: string };

/** Why the written file of this checkpoint is not evaluated at the end of quantize, or undefined where it is. */
export async function evaluationRefusal(ckpt: Checkpoint, format: string): Promise<string | undefined> {
  if (format === 'onnx') return 'ONNX output: `quantkit report --format onnx` evaluates it through ONNX Runtime';
  const need = calibrationBytes(ckpt);
  if (need === null) return `the reference forward pass covers model_type ${EVAL_ARCHITECTURES.join(', ')} (this is '${String(ckpt.config?.model_type ?? 'unknown')}')`;
  const params = ckpt.tensors.reduce((n, t) => n + (shapeElements(t.shape) ?? 0), 0);
  if (params > AUTO_CALIBRATION_MAX_PARAMS)
    return `${(params / 1e6).toFixed(1)} M parameters: quantize measures perplexity for models up to ${AUTO_CALIBRATION_MAX_PARAMS / 1e6} M, where it takes seconds (quantkit report evaluates any size)`;
  if (need > totalmem()) return 'the f32 model does not fit in memory';
  const tokenizer = join(ckpt.dir, 'tokenizer.json');
  if (!(await pathExists(tokenizer))) return 'no tokenizer.json beside the weights';
  try {
    await Tokenizer.fromFile(tokenizer);
  } catch (e) {
    // A tokenizer the evaluator does not read (byte-level BPE) leaves the run as it is, with the reason.
    if (e instanceof QuantkitError && e.code === 'ERR_EVAL') return e.message;
    throw e;
  }
  return undefined;
}

/**
 * Evaluates the output directory `dir` (packed safetensors or GGUF, as written from `ckpt`) and the
 * original on `file`; `{ skipped }` where evaluationRefusal says no.
 */
export async function evaluateWritten(dir: string, ckpt: Checkpoint, o: { format: string; file?: string; threads?: number; signal?: AbortSignal }): Promise<EvaluationOutcome> {
  const refusal = await evaluationRefusal(ckpt, o.format);
  if (refusal) return { skipped: refusal };
  const t0 = performance.now();
  const file = o.file ?? BUNDLED_EVAL_TEXT;
  const sequences = await evaluationSequences(ckpt, file, EVAL_MAX_TOKENS);
  const reference = await Reference.compute(await LlamaModel.load(ckpt), sequences, o.threads);
  o.signal?.throwIfAborted();
  const values = await writtenValues(dir, ckpt, o.threads);
  const model = await LlamaModel.load(ckpt, async (t) => {
    const v = values.get(t.name);
    if (!v) throw new QuantkitError('ERR_EVAL', 'is not in the written file', { file: dir, tensor: t.name });
    return v;
  });
  const d = await reference.compare(model, o.threads);
  return {
    file,
    documents: sequences.length,
    tokens: d.tokens,
    max_tokens: EVAL_MAX_TOKENS,
    original_perplexity: reference.result.perplexity,
    perplexity: d.perplexity,
    kl_mean: d.kl_mean,
    top1_agreement: d.top1_agreement,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Every tensor of a written output as f32 values in the checkpoint's orientation, by checkpoint tensor name. */
export async function writtenValues(dir: string, ckpt: Checkpoint, threads?: number): Promise<Map<string, Float32Array>> {
  const rb = await (await detectFormat(dir)).readBack(dir);
  try {
    const out = new Map<string, Float32Array>();
    for (const t of rb.tensors) {
      const source = sourceOf(ckpt, t.source ?? t.name, dir);
      out.set(source.name, undoTransform(await readValues(t, threads), transformOf(t, rb.runnable, source.name, ckpt, dir), source.shape, dir, t.name));
    }
    return out;
  } finally {
    await rb.close();
  }
}

async function readValues(t: ReadBackTensor, threads?: number): Promise<Float32Array> {
  if (t.kind === 'keep') return toFloat32(await t.readRange(0, new Uint8Array(t.bytes)), t.dtype);
  const parts = await t.load();
  const values = new Float32Array(t.view.rows * t.view.cols);
  await addon().dequantize({ spec: t.spec, rows: t.view.rows, cols: t.view.cols, parts, out: values, threads });
  return values;
}

/** The transform the writer applied (runnable GGUF: the rotary row order of q/k, quantized or kept), as verify finds it. */
function transformOf(t: ReadBackTensor, runnable: boolean | undefined, name: string, ckpt: Checkpoint, dir: string): TensorTransform | undefined {
  if (t.kind === 'quantize' && t.transform) return t.transform;
  return runnable ? ggufArchitecture(ckpt.config, dir).map(name)?.transform : undefined;
}

/** Back to the checkpoint's layout: the inverse of applyRowTransform's rotary permutation. */
function undoTransform(values: Float32Array, t: TensorTransform | undefined, shape: number[], dir: string, name: string): Float32Array {
  if (!t) return values;
  if (t.kind !== 'unpermute-rope') throw new QuantkitError('ERR_EVAL', `cannot evaluate a tensor stored with transform '${t.kind}'`, { file: dir, tensor: name });
  const rows = shape[0]!, cols = values.length / rows;
  const out = new Float32Array(values.length);
  const half = t.headDim / 2;
  for (let h = 0; h < t.heads; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const hf = h * t.headDim + j * half + i; // the checkpoint's row
        const stored = h * t.headDim + i * 2 + j; // where the writer put it
        out.set(values.subarray(stored * cols, (stored + 1) * cols), hf * cols);
      }
  return out;
}
