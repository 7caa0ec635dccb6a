/**
 * Calibration without calibration data: the original model writes its own text (sampled from its own
 * next-token distribution, seeded), and the reference forward pass runs over that text to collect, for
 * every linear layer, the second moments of its input (sum of x x^T: GPTQ's Hessian up to a factor).
 * The user supplies nothing but the checkpoint; the text follows the distribution the model was trained
 * to produce, which is what its layers must keep handling well after quantization.
 *
 * The forward pass holds the model in f32 and the statistics take layers * (3 hidden^2 + ffn^2) * 4
 * bytes: this is for models the reference forward pass covers (Llama family) and that fit in memory.
 */
import type { Checkpoint } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import { totalmem } from 'node:os';
import { LlamaModel, calibrationBytes } from '../eval/llama.js';
import { formatBytes } from '../units.js';
import { type CalibrationOptions, checkCalibration } from '../plan.js';

// 64 x 256 tokens: on stories260k with every matrix quantized, four seeds all gave perplexity 3.56-3.60
// (32 x 128: 3.59-3.62, one of four above 3.60; docs/quality.md); ~8 s for the bundled models.
export const CALIBRATION_DEFAULTS: Required<CalibrationOptions> = { samples: 64, length: 256, seed: 0, damp: 0.1 };

export interface Calibration {
  /** Input second moments by checkpoint tensor name (q/k/v share one array, as do gate/up). */
  hessians: Map<string, Float32Array>;
  /** The generated token ids, samples x length. */
  tokens: Int32Array;
  /** The settings used, defaults filled in. */
  settings: Required<CalibrationOptions>;
}

/** Runs the model on text it writes itself and returns each linear layer's input statistics. */
export async function calibrate(ckpt: Checkpoint, o: CalibrationOptions & { threads?: number; signal?: AbortSignal } = {}): Promise<Calibration> {
  checkCalibration(o);
  const need = calibrationBytes(ckpt);
  if (need !== null && need > totalmem())
    throw new QuantkitError('ERR_USAGE', `GPTQ's calibration holds the model in f32 and every layer's input statistics: ${formatBytes(need)}, more than this machine's ${formatBytes(totalmem())} of memory (use --method search)`, { file: ckpt.dir });
  const def = CALIBRATION_DEFAULTS;
  const c: Required<CalibrationOptions> = { samples: o.samples ?? def.samples, length: o.length ?? def.length, seed: o.seed ?? def.seed, damp: o.damp ?? def.damp };
  const model = await LlamaModel.load(ckpt).catch((e: unknown) => {
    if (e instanceof QuantkitError && e.code === 'ERR_EVAL') throw new QuantkitError('ERR_USAGE', `GPTQ calibrates with the reference forward pass: ${e.message}`, { file: ckpt.dir });
    throw e;
  });
  const context = Number(ckpt.config?.max_position_embeddings ?? Infinity);
  if (c.length > context) throw new QuantkitError('ERR_USAGE', `--calibration-length ${c.length} exceeds the model's context (${context})`, { file: ckpt.dir });
  o.signal?.throwIfAborted();
  const bos = Number(ckpt.config?.bos_token_id ?? 1);
  if (!(Number.isInteger(bos) && bos >= 0 && bos < model.config.vocab)) throw new QuantkitError('ERR_USAGE', `config.json: bos_token_id ${String(ckpt.config?.bos_token_id)} is not a token of the vocabulary`, { file: ckpt.dir });
  const tokens = await model.generate({ first: bos, count: c.samples, length: c.length, seed: c.seed, temperature: 1, threads: o.threads });
  o.signal?.throwIfAborted();
  const stats = await model.inputStats(tokens, c.length, o.threads);
  const { hidden: d, ffn, heads, headDim, layers } = model.config;
  const nq = heads * headDim;
  const hessians = new Map<string, Float32Array>();
  const slice = (a: Float32Array, l: number, n: number) => a.subarray(l * n * n, (l + 1) * n * n);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    for (const m of ['q_proj', 'k_proj', 'v_proj']) hessians.set(`${p}self_attn.${m}.weight`, slice(stats.attnIn, l, d));
    hessians.set(`${p}self_attn.o_proj.weight`, slice(stats.oIn, l, nq));
    for (const m of ['gate_proj', 'up_proj']) hessians.set(`${p}mlp.${m}.weight`, slice(stats.mlpIn, l, d));
    hessians.set(`${p}mlp.down_proj.weight`, slice(stats.downIn, l, ffn));
  }
  // The output head's input; a tied embedding is stored once and quantized for its use as the head.
  const head = ckpt.aliases.get('lm_head.weight') ?? 'lm_head.weight';
  hessians.set(head, stats.final);
  return { hessians, tokens, settings: c };
}
