/**
 * `estimate`: predicts packed size, inference memory or fine-tuning memory for a model directory, a
 * config.json or (through hub.ts) a Hugging Face repository, and says whether it fits a device.
 * Packed sizes for quantkit's own formats come from the planner that `quantize` executes.
 */
import { QuantkitError } from '../errors.js';
import type { QuantizeOptions } from '../plan.js';
import { type Gpu, findGpu } from './gpus.js';
import { type EstimateModel, openLocalModel } from './model.js';
import { parseParallel } from './parallel.js';
import { type Components, type Convention, type Method, type Optimizer, type Precision, finetuneComponents, finetunePeak, inferenceComponents, loraParams, peakRule } from './scenarios.js';
import { type WeightDtype, type WeightFormat, weightBytes } from './weights.js';
import type { Attention } from './activations.js';
import { llamaCppMemory } from './llamacpp-runtime.js';
import { onnxRuntimeMemory } from './onnxruntime-runtime.js';

export type Scenario = 'inference' | 'finetune' | 'packed';
export type PeakKind = 'allocator' | 'device';

/**
 * `bits` (with quantize's other options: group size, mode, format, keep/override rules, scale dtype,
 * shard size, GGUF type) selects quantkit's own format, priced by the planner byte for byte.
 */
export interface EstimateOptions extends Partial<QuantizeOptions> {
  scenario?: Scenario;
  /** Weight format: fp32, bf16, fp16, int8/nf4/fp4 (bitsandbytes), gguf:<llama.cpp type>, or quantkit (set by bits). */
  dtype?: WeightDtype;
  doubleQuant?: boolean;
  batch?: number;
  /** Tokens per sequence: context for inference (prompt + generated), training sequence length. */
  seq?: number;
  /** Bytes per KV-cache element (2 = fp16/bf16, 1 = 8-bit cache). */
  kvBytes?: number;
  attention?: Attention;
  logitsAllPositions?: boolean;
  method?: Method;
  precision?: Precision;
  optimizer?: Optimizer;
  loraRank?: number;
  loraTargets?: string[];
  gradCheckpointing?: boolean;
  dropout?: boolean;
  chunkedLoss?: boolean;
  compile?: boolean;
  optimizerInBackward?: boolean;
  offloadActivations?: boolean;
  /** Gradients kept between steps (zero_grad without set_to_none: PyTorch < 2.0). */
  gradientsPersist?: boolean;
  convention?: Convention;
  gpus?: number;
  parallel?: string;
  gpu?: string;
  peak?: PeakKind;
  /** Memory the CUDA context takes outside the allocator (device peak only). */
  cudaContextBytes?: number;
  /** Look for the cheapest configuration that fits --gpu. */
  recommend?: boolean;
  /**
   * Inference runtime: 'pytorch' (transformers/bitsandbytes on a GPU, the default) or 'llama.cpp'
   * (the buffers llama.cpp allocates for a GGUF file: model, KV cache, output, compute).
   */
  runtime?: 'pytorch' | 'llama.cpp' | 'onnxruntime';
  /** llama.cpp micro-batch (n_ubatch, default 512). */
  ubatch?: number;
}

export interface Estimate {
  model: string;
  params: number;
  params_source: string;
  scenario: Scenario;
  /** Weight format (inference, packed) or training precision (finetune). */
  dtype: string;
  batch: number | null;
  seq: number | null;
  method: string;
  gpus: number;
  parallel: string;
  peak_bytes: number;
  /** allocator/device: a GPU's; host: llama.cpp's CPU buffers; file: packed size. */
  peak_kind: PeakKind | 'host' | 'file';
  components: Components;
  assumptions: Record<string, unknown>;
  fits?: { gpu: string; capacity_bytes: number; fits: boolean; headroom_bytes: number; note: string };
  cheapest_fit?: { description: string; options: EstimateOptions; peak_bytes: number } | null;
}

/** Default CUDA context: 0.3-2 GiB by driver and GPU; the V100 measurement in the reference is 1.31 GiB. */
export const DEFAULT_CUDA_CONTEXT = 1 * 2 ** 30;

function positive(name: string, v: number | undefined, fallback: number): number {
  const n = v ?? fallback;
  if (!Number.isSafeInteger(n) || n < 0) throw new QuantkitError('ERR_USAGE', `${name} must be a non-negative integer (got ${String(v)})`);
  return n;
}

function weightFormat(o: EstimateOptions, fallback: WeightDtype): WeightFormat {
  if (o.bits !== undefined) {
    if (o.dtype !== undefined && o.dtype !== 'quantkit') throw new QuantkitError('ERR_USAGE', '--bits selects quantkit\'s own format: do not combine it with --dtype');
    const { bits, groupSize, mode, format, keep, bitsFor, scaleDtype, maxShardSize, ggufType, onnxDtype } = o;
    return { dtype: 'quantkit', quantkit: { bits, groupSize, mode, format, keep, bitsFor, scaleDtype, maxShardSize, ggufType, onnxDtype } };
  }
  return { dtype: o.dtype ?? fallback, doubleQuant: o.doubleQuant };
}

export async function estimateModel(model: EstimateModel, o: EstimateOptions = {}): Promise<Estimate> {
  const scenario = o.scenario ?? 'inference';
  if (!['inference', 'finetune', 'packed'].includes(scenario)) throw new QuantkitError('ERR_USAGE', `--scenario must be inference, finetune or packed (got ${scenario})`);
  const gpus = positive('--gpus', o.gpus, 1);
  const layout = parseParallel(o.parallel, gpus);
  const peakKind = o.peak ?? 'device';
  const base = { model: model.name, params: model.params, params_source: model.paramsSource, scenario, dtype: '', batch: null as number | null, seq: null as number | null, method: scenario === 'finetune' ? (o.method ?? 'full') : scenario, gpus, parallel: layout.label };
  let est: Estimate;

  if (scenario === 'packed') {
    const wf = weightFormat(o, 'bf16');
    const w = await weightBytes(model, wf);
    const components: Components = {};
    if (w.plan) for (const f of w.plan.files) components[f.name] = f.bytes;
    else components.weights = w.total;
    const bytes = w.plan ? w.plan.outputBytes : w.total;
    est = { ...base, dtype: wf.dtype, peak_bytes: bytes, peak_kind: 'file', components, assumptions: { dtype: wf.dtype, ...(wf.quantkit ?? {}), note: w.plan ? 'exact: the bytes quantize writes (same planner)' : 'tensor data only: headers and tokenizer metadata are not counted' } };
  } else {
    const dims = model.dims;
    if (!dims && o.batch !== 0) throw new QuantkitError('ERR_CHECKPOINT', `memory scenarios need the architecture: config.json is missing or its model_type has no formulas`, { file: model.checkpoint.dir });
    const batch = positive('--batch', o.batch, 1);
    // 2048 tokens, or the model's whole context when it is shorter.
    const seq = positive('--seq', o.seq, Math.min(2048, dims?.maxContext || 2048));
    base.batch = batch;
    base.seq = seq;
    const attention = o.attention ?? 'flash';
    if (scenario === 'inference') {
      const wf = weightFormat(o, 'bf16');
      const w = await weightBytes(model, wf);
      const bnb = ['int8', 'nf4', 'fp4'].includes(wf.dtype);
      const kvBytes = o.kvBytes ?? 2;
      if (o.runtime === 'llama.cpp') {
        if (!dims) throw new QuantkitError('ERR_CHECKPOINT', 'llama.cpp memory needs the architecture from config.json', { file: model.checkpoint.dir });
        const m = llamaCppMemory(dims, w.total, { contextSize: seq, batchSize: o.ubatch, kvBytes });
        const components = { weights: m.model, kv_cache: m.kv_cache, output_buffer: m.output, compute_buffer: m.compute };
        est = { ...base, dtype: wf.dtype, peak_bytes: m.total, peak_kind: 'host', components, assumptions: { scenario, runtime: 'llama.cpp (CPU buffers, flash attention)', dtype: wf.dtype, ...(wf.quantkit ? { quantkit: wf.quantkit } : {}), context: seq, ubatch: Math.min(o.ubatch ?? 512, seq), kv_bytes: kvBytes, gpus, parallel: layout.label } };
        return withFit(est, model, o);
      }
      if (o.runtime === 'onnxruntime') {
        if (!dims) throw new QuantkitError('ERR_CHECKPOINT', 'ONNX Runtime memory needs the architecture from config.json', { file: model.checkpoint.dir });
        // quantkit's ONNX export: the external data file's exact bytes (rotary caches included).
        const data = w.plan?.files.find((f) => f.name.endsWith('.onnx_data'));
        const activationBytes = ['fp16', 'q4f16'].includes(wf.quantkit?.onnxDtype ?? '') || wf.dtype === 'fp16' ? 2 : 4;
        const { total, ...components } = onnxRuntimeMemory(dims, data?.bytes ?? w.total, { tokens: seq, activationBytes });
        est = { ...base, dtype: wf.dtype, peak_bytes: total, peak_kind: 'host', components, assumptions: { scenario, runtime: 'onnxruntime-node (CPU, one prompt of seq tokens)', dtype: wf.dtype, ...(wf.quantkit ? { quantkit: wf.quantkit } : {}), tokens: seq, activation_bytes: activationBytes } };
        return withFit(est, model, o);
      }
      const components = !dims ? { weights: w.total } : inferenceComponents({ dims, weights: w.total, dequantScratchParams: bnb ? w.largestQuantizedParams : 0, activationBytes: 2, kvBytes, batch, seq, attention, logitsAllPositions: o.logitsAllPositions ?? false, layout });
      est = { ...base, dtype: wf.dtype, peak_bytes: 0, peak_kind: peakKind, components, assumptions: { scenario, dtype: wf.dtype, ...(wf.quantkit ? { quantkit: wf.quantkit } : {}), batch, seq, kv_bytes: kvBytes, attention, method: 'inference', gpus, parallel: layout.label } };
      est.peak_bytes = Object.values(components).reduce((a, b) => a + b, 0);
    } else {
      const method = o.method ?? 'full';
      if (!['full', 'lora', 'qlora'].includes(method)) throw new QuantkitError('ERR_USAGE', `--method must be full, lora or qlora (got ${method})`);
      const precision = o.precision ?? (method === 'full' ? 'mixed' : 'bf16');
      const optimizer = o.optimizer ?? 'adamw';
      if (!['adamw', 'adamw8bit', 'sgd', 'sgd-momentum'].includes(optimizer)) throw new QuantkitError('ERR_USAGE', `--optimizer must be adamw, adamw8bit, sgd or sgd-momentum (got ${optimizer})`);
      const rank = positive('--lora-rank', o.loraRank, 8);
      const targets = o.loraTargets ?? ['q_proj', 'v_proj'];
      const trainable = method === 'full' ? model.params : loraParams(model.checkpoint.tensors, rank, targets);
      let weights = 0;
      let dequant = 0;
      if (method !== 'full') {
        const wf: WeightFormat = method === 'qlora' ? { dtype: 'nf4', doubleQuant: o.doubleQuant ?? true } : { dtype: precision === 'fp32' ? 'fp32' : 'bf16' };
        const w = await weightBytes(model, wf);
        weights = w.total;
        dequant = w.largestQuantizedParams;
      }
      // PEFT keeps adapters in fp32 under mixed precision; pure 16-bit recipes (torchtune) keep them in bf16.
      const adapterBytes = precision === 'mixed' || precision === 'fp32' ? 4 : 2;
      const r = finetuneComponents({
        dims, params: model.params, trainable, weights, adapterBytes, largestTensorParams: model.largestTensorParams, dequantScratchParams: dequant,
        method, precision, optimizer, convention: o.convention ?? 'pytorch', batch, seq, gradCheckpointing: o.gradCheckpointing ?? false, attention,
        dropout: o.dropout ?? false, chunkedLoss: o.chunkedLoss ?? false, compile: o.compile ?? false, optimizerInBackward: o.optimizerInBackward ?? false,
        offloadActivations: o.offloadActivations ?? false, gradientsPersist: o.gradientsPersist ?? false, layout,
      });
      est = {
        ...base, dtype: precision, peak_bytes: finetunePeak(r), peak_kind: peakKind, components: r.components,
        assumptions: { scenario, method, precision, optimizer, trainable_params: trainable, ...(method !== 'full' ? { lora_rank: rank, lora_targets: targets } : {}), batch, seq, grad_checkpointing: o.gradCheckpointing ?? false, attention, gpus, parallel: layout.label, convention: o.convention ?? 'pytorch', peak_rule: peakRule(r) },
      };
    }
    if (peakKind === 'device') {
      const ctx = o.cudaContextBytes ?? DEFAULT_CUDA_CONTEXT;
      est.components.cuda_context = ctx;
      est.peak_bytes += ctx;
    }
  }

  return withFit(est, model, o);
}

async function withFit(est: Estimate, model: EstimateModel, o: EstimateOptions): Promise<Estimate> {
  if (o.gpu) {
    const gpu = findGpu(o.gpu);
    est.fits = fitsOn(est.peak_bytes, gpu);
    if (o.recommend !== false && !est.fits.fits) est.cheapest_fit = await cheapestFit(model, o, gpu);
  }
  return est;
}

function fitsOn(bytes: number, gpu: Gpu) {
  return { gpu: gpu.name, capacity_bytes: gpu.bytes, fits: bytes <= gpu.bytes, headroom_bytes: gpu.bytes - bytes, note: gpu.note };
}

/**
 * The first configuration, from most faithful to most frugal, whose peak fits the device: LLMem's
 * question ("which method before running out of memory") asked of our own formulas.
 */
async function cheapestFit(model: EstimateModel, o: EstimateOptions, gpu: Gpu): Promise<Estimate['cheapest_fit']> {
  const scenario = o.scenario ?? 'inference';
  const common: EstimateOptions = { ...o, gpu: undefined, recommend: false, bits: undefined, dtype: undefined, keep: undefined, bitsFor: undefined, ggufType: undefined };
  const candidates: [string, EstimateOptions][] = [];
  if (scenario === 'inference') {
    // gguf-raw prices the same Q8_0/Q4_0 blocks for any architecture (runnable GGUF needs a mapped one).
    candidates.push(['bf16 weights', { ...common, dtype: 'bf16' }], ['int8 (bitsandbytes)', { ...common, dtype: 'int8' }], ['quantkit int8 (GGUF Q8_0)', { ...common, bits: 8, format: 'gguf-raw' }], ['nf4 (bitsandbytes, double quant)', { ...common, dtype: 'nf4', doubleQuant: true }], ['quantkit int4 (GGUF Q4_0)', { ...common, bits: 4, format: 'gguf-raw' }]);
    for (const seq of [1024, 512]) if ((o.seq ?? 2048) > seq) candidates.push([`quantkit int4 (GGUF Q4_0), context ${seq}`, { ...common, bits: 4, format: 'gguf-raw', seq }]);
  } else if (scenario === 'finetune') {
    for (const g of [1, 2, 4, 8]) {
      const par = g === 1 ? undefined : 'zero3';
      const on = g === 1 ? '1 GPU' : `${g} GPUs, ZeRO-3`;
      candidates.push(
        [`full, mixed-precision AdamW, ${on}`, { ...common, gpus: g, parallel: par, method: 'full', precision: 'mixed', optimizer: 'adamw' }],
        [`full, mixed-precision AdamW, gradient checkpointing, ${on}`, { ...common, gpus: g, parallel: par, method: 'full', precision: 'mixed', optimizer: 'adamw', gradCheckpointing: true }],
        [`full, bf16 with 8-bit AdamW, gradient checkpointing, ${on}`, { ...common, gpus: g, parallel: par, method: 'full', precision: 'bf16', optimizer: 'adamw8bit', gradCheckpointing: true }],
        [`LoRA r=${o.loraRank ?? 8}, gradient checkpointing, ${on}`, { ...common, gpus: g, parallel: par, method: 'lora', precision: 'bf16', gradCheckpointing: true }],
        [`QLoRA r=${o.loraRank ?? 8}, gradient checkpointing, ${on}`, { ...common, gpus: g, parallel: par, method: 'qlora', precision: 'bf16', gradCheckpointing: true }],
      );
    }
  } else {
    for (const bits of [8, 4] as const) candidates.push([`quantkit int${bits}`, { ...common, bits, format: o.format }]);
  }
  for (const [description, options] of candidates) {
    const e = await estimateModel(model, options);
    if (e.peak_bytes <= gpu.bytes) return { description, options, peak_bytes: e.peak_bytes };
  }
  return null;
}

/** Estimate for a local model directory or config.json (hub ids go through `estimate` in index.ts). */
export async function estimateLocal(target: string, o: EstimateOptions = {}): Promise<Estimate> {
  const model = await openLocalModel(target);
  try {
    return await estimateModel(model, o);
  } finally {
    await model.checkpoint.close();
  }
}
