/**
 * The Llama-family model the reference forward pass runs (native/src/model/llama.cc): dimensions from
 * config.json, weights from a checkpoint as f32, optionally replaced tensor by tensor with what a
 * quantization plan would store (quantized, then dequantized: exactly the values a runtime computes with).
 */
import type { Checkpoint, CheckpointTensor, ModelConfig } from '../checkpoint.js';
import { toFloat32 } from '../convert.js';
import { QuantkitError } from '../errors.js';
import { shapeElements } from '../safetensors/dtypes.js';
import { addon, type LlamaForwardConfig, type LlamaForwardWeights, type LlamaInputStats } from '../native.js';

/** Architectures the forward pass computes exactly (no attention biases, no sliding window in play). */
export const EVAL_ARCHITECTURES = ['llama', 'mistral'];

export function llamaConfig(config: ModelConfig | null, file: string): LlamaForwardConfig {
  const type = String(config?.model_type ?? '');
  if (!config || !EVAL_ARCHITECTURES.includes(type))
    throw new QuantkitError('ERR_EVAL', `the reference forward pass covers model_type ${EVAL_ARCHITECTURES.join(', ')} (this is '${type || 'unknown'}')`, { file });
  const num = (k: string, fallback?: number): number => {
    const v = config[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new QuantkitError('ERR_EVAL', `config.json: ${k} must be a positive number`, { file });
    return v;
  };
  const hidden = num('hidden_size');
  const heads = num('num_attention_heads');
  const scaling = config.rope_scaling;
  if (scaling !== null && scaling !== undefined) throw new QuantkitError('ERR_EVAL', 'config.json: rope_scaling is not supported by the reference forward pass', { file });
  return {
    hidden,
    ffn: num('intermediate_size'),
    layers: num('num_hidden_layers'),
    heads,
    kvHeads: num('num_key_value_heads', heads),
    headDim: num('head_dim', hidden / heads),
    vocab: num('vocab_size'),
    normEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
  };
}

/**
 * Bytes a calibration on this checkpoint holds at its peak: every weight in f32 and each linear layer's
 * input statistics (null: the forward pass does not cover the model).
 */
export function calibrationBytes(ckpt: Checkpoint): number | null {
  let cfg;
  try {
    cfg = llamaConfig(ckpt.config, ckpt.dir);
  } catch {
    return null;
  }
  const weights = ckpt.tensors.reduce((n, t) => n + (shapeElements(t.shape) ?? 0), 0) * 4;
  const nq = cfg.heads * cfg.headDim;
  const stats = (cfg.layers * (2 * cfg.hidden ** 2 + nq ** 2 + cfg.ffn ** 2) + cfg.hidden ** 2) * 4;
  return weights + stats;
}

/**
 * The largest model `--method auto` calibrates, in parameters. Calibration has the model write its
 * 64 x 256-token text and collects every layer's input statistics, so its time grows with the
 * parameter count (the bundled 0.66 M-parameter model: 8-15 s on 2 cores); above this the default
 * would stall a build pipeline for minutes to hours (a 0.49 B-parameter checkpoint ran over 10 minutes
 * and 2 GB), so auto takes the calibration-free search there. `--method gptq` calibrates any size.
 */
export const AUTO_CALIBRATION_MAX_PARAMS = 4_000_000;

/** Why `--method auto` does not calibrate this checkpoint, or undefined where it does. */
export function autoCalibrationRefusal(ckpt: Checkpoint, memory: number): string | undefined {
  const need = calibrationBytes(ckpt);
  if (need === null) return `the reference forward pass covers model_type ${EVAL_ARCHITECTURES.join(', ')}`;
  if (need > memory) return 'the f32 model and its statistics do not fit in memory';
  const params = ckpt.tensors.reduce((n, t) => n + (shapeElements(t.shape) ?? 0), 0);
  if (params > AUTO_CALIBRATION_MAX_PARAMS)
    return `${(params / 1e6).toFixed(1)} M parameters: auto calibrates models up to ${AUTO_CALIBRATION_MAX_PARAMS / 1e6} M, where it takes seconds; --method gptq calibrates any size`;
  return undefined;
}

/** Replaces a tensor's values (f32, Hugging Face orientation) with what a plan stores for it. */
export type TensorValues = (tensor: CheckpointTensor, values: Float32Array) => Promise<Float32Array>;

export class LlamaModel {
  private constructor(
    readonly config: LlamaForwardConfig,
    private readonly weights: LlamaForwardWeights,
  ) {}

  /** Loads every weight of `ckpt` as f32; `values` (when given) turns each into its quantized version. */
  static async load(ckpt: Checkpoint, values?: TensorValues): Promise<LlamaModel> {
    const config = llamaConfig(ckpt.config, ckpt.dir);
    const byName = new Map(ckpt.tensors.map((t) => [t.name, t]));
    const cache = new Map<string, Float32Array>();
    const get = async (name: string): Promise<Float32Array> => {
      const t = byName.get(name) ?? byName.get(ckpt.aliases.get(name) ?? '');
      if (!t) throw new QuantkitError('ERR_EVAL', `tensor '${name}' is missing`, { file: ckpt.dir });
      if (/\.bias$/.test(t.name)) throw new QuantkitError('ERR_EVAL', 'biases are not supported', { file: ckpt.dir, tensor: t.name });
      let v = cache.get(t.name);
      if (!v) {
        v = toFloat32(await ckpt.read(t), t.dtype);
        if (values) v = await values(t, v);
        cache.set(t.name, v);  // a tied weight is read (and quantized) once
      }
      return v;
    };
    if (ckpt.tensors.some((t) => /\.bias$/.test(t.name)))
      throw new QuantkitError('ERR_EVAL', 'the reference forward pass has no biases (this checkpoint has some)', { file: ckpt.dir });
    const layers: LlamaForwardWeights['layers'] = [];
    for (let l = 0; l < config.layers; l++) {
      const p = `model.layers.${l}.`;
      layers.push({
        attnNorm: await get(`${p}input_layernorm.weight`),
        wq: await get(`${p}self_attn.q_proj.weight`),
        wk: await get(`${p}self_attn.k_proj.weight`),
        wv: await get(`${p}self_attn.v_proj.weight`),
        wo: await get(`${p}self_attn.o_proj.weight`),
        ffnNorm: await get(`${p}post_attention_layernorm.weight`),
        wGate: await get(`${p}mlp.gate_proj.weight`),
        wUp: await get(`${p}mlp.up_proj.weight`),
        wDown: await get(`${p}mlp.down_proj.weight`),
      });
    }
    const embed = await get('model.embed_tokens.weight');
    const lmHead = byName.has('lm_head.weight') || ckpt.aliases.has('lm_head.weight') ? await get('lm_head.weight') : embed;
    return new LlamaModel(config, { embed, finalNorm: await get('model.norm.weight'), lmHead, layers });
  }

  /** Logits [tokens.length, vocab] of one causal sequence. */
  async logits(tokens: readonly number[], threads = 1): Promise<Float32Array> {
    const out = new Float32Array(tokens.length * this.config.vocab);
    await addon().llamaLogits({ config: this.config, weights: this.weights, tokens: Int32Array.from(tokens), out, threads });
    return out;
  }

  /** `count` sequences of `length` ids sampled from the model, each starting with `first` (e.g. BOS). */
  async generate(o: { first: number; count: number; length: number; seed: number; temperature: number; threads?: number }): Promise<Int32Array> {
    const out = new Int32Array(o.count * o.length);
    await addon().llamaGenerate({ config: this.config, weights: this.weights, ...o, out });
    return out;
  }

  /** Every linear layer's input second moments over the sequences tokens[k*length, (k+1)*length). */
  async inputStats(tokens: Int32Array, length: number, threads = 1): Promise<LlamaInputStats> {
    const { hidden: d, ffn, layers: L, heads, headDim } = this.config;
    const nq = heads * headDim;
    const out: LlamaInputStats = { attnIn: new Float32Array(L * d * d), oIn: new Float32Array(L * nq * nq), mlpIn: new Float32Array(L * d * d), downIn: new Float32Array(L * ffn * ffn), final: new Float32Array(d * d) };
    await addon().llamaInputStats({ config: this.config, weights: this.weights, tokens, length, out, threads });
    return out;
  }
}
