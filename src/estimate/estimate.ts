/**
 * `estimate`: predicts packed size, inference memory or fine-tuning memory for a model directory, a
 * config.json or (through hub.ts) a Hugging Face repository, and says whether it fits a device.
 * Packed sizes for quantkit's own formats come from the planner that `quantize` executes.
 */
import { QuantkitError } from '../errors.js';
import type { QuantizeOptions } from '../plan.js';
import { type Device, type DeviceFit, findDevice, fitOn } from './devices.js';
import { type Convention, type Term, allocatedPeak, allocatorReserve, finetuneTerms, loraLayer, loraParams, peakRule } from './finetune.js';
import { type Framework, type LossImpl, type LoraDropout, type Method, type Optimizer, type Precision, type Quantizer, type TrainingSettings, type WrapUnit, type ZeroBuckets, OPTIMIZERS, resolveSettings } from './frameworks.js';
import { type EstimateModel, openLocalModel } from './model.js';
import { parseParallel } from './parallel.js';
import { type Components, inferenceComponents } from './scenarios.js';
import { modelUnits, tensorsBytes } from './units.js';
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
  /** Framework preset: its defaults for every setting below that is left undefined. */
  framework?: Framework;
  gradCheckpointing?: boolean;
  dropout?: boolean;
  /** Same as loss: 'chunked'. */
  chunkedLoss?: boolean;
  loss?: LossImpl;
  /** Micro-steps per optimizer step (gradient accumulation). */
  gradAccumulation?: number;
  /** Accumulate without reducing between micro-steps (no_sync): unsharded gradients persist. */
  accumulateUnsynced?: boolean;
  /** FSDP/ZeRO CPU offload of sharded parameters, gradients and optimizer states. */
  cpuOffload?: boolean;
  /** FSDP wrapping unit. */
  wrap?: WrapUnit;
  /** Frozen and trainable parameters share FSDP units (FSDP1 use_orig_params=True). */
  sharedUnits?: boolean;
  /** Bytes per gradient element in FSDP's reduce-scatter (reduce_dtype: 2 or 4). */
  reduceBytes?: number;
  /** Bytes per LoRA adapter parameter (4 = fp32 adapters, 2 = compute dtype). */
  adapterBytes?: number;
  quantizer?: Quantizer;
  /** prepare_model_for_kbit_training: non-quantized weights upcast to fp32 (QLoRA). */
  kbitUpcast?: boolean;
  /** QLoRA: the output head is quantized too (Lit-GPT). */
  quantizedHead?: boolean;
  /** Bytes per parameter of a 4-bit weight's transient dequantized copy. */
  dequantBytes?: number;
  loraDropout?: LoraDropout;
  /** DeepSpeed ZeRO bucket sizes in elements. */
  zeroBuckets?: Partial<ZeroBuckets>;
  compile?: boolean;
  optimizerInBackward?: boolean;
  offloadActivations?: boolean;
  /** Gradients kept between steps (zero_grad without set_to_none: PyTorch < 2.0). */
  gradientsPersist?: boolean;
  convention?: Convention;
  gpus?: number;
  parallel?: string;
  /** Check the fit on a device: a GPU, a Mac, a phone (devices.ts). */
  device?: string;
  /** Same as device (the flag's earlier name). */
  gpu?: string;
  peak?: PeakKind;
  /** Memory the CUDA context takes outside the allocator (device peak only). */
  cudaContextBytes?: number;
  /** Look for the cheapest configuration that fits --device. */
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
  /** Every component with the behaviour it models (what --explain prints), and its phase for fine-tuning. */
  terms: { name: string; bytes: number; why: string; phase?: Term['phase']; outside_allocator?: boolean }[];
  /** Fine-tuning: every resolved setting and where it came from (explicit, framework preset, default). */
  settings?: Record<string, { value: unknown; why: string }>;
  assumptions: Record<string, unknown>;
  fits?: DeviceFit;
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
    const { bits, groupSize, mode, format, keep, bitsFor, scaleDtype, maxShardSize, ggufType, pure, onnxDtype, imatrix, quantMethod } = o;
    return { dtype: 'quantkit', quantkit: { bits, groupSize, mode, format, keep, bitsFor, scaleDtype, maxShardSize, ggufType, pure, onnxDtype, imatrix, ...(quantMethod ? { quantMethod } : {}) } };
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
    est = { ...base, dtype: wf.dtype, peak_bytes: bytes, peak_kind: 'file', components, terms: explained(components), assumptions: { dtype: wf.dtype, ...(wf.quantkit ?? {}), note: w.plan ? 'exact: the bytes quantize writes (same planner)' : 'tensor data only: headers and tokenizer metadata are not counted' } };
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
        est = { ...base, dtype: wf.dtype, peak_bytes: m.total, peak_kind: 'host', components, terms: explained(components), assumptions: { scenario, runtime: 'llama.cpp (CPU buffers, flash attention)', dtype: wf.dtype, ...(wf.quantkit ? { quantkit: wf.quantkit } : {}), context: seq, ubatch: Math.min(o.ubatch ?? 512, seq), kv_bytes: kvBytes, gpus, parallel: layout.label } };
        return withFit(est, model, o);
      }
      if (o.runtime === 'onnxruntime') {
        if (!dims) throw new QuantkitError('ERR_CHECKPOINT', 'ONNX Runtime memory needs the architecture from config.json', { file: model.checkpoint.dir });
        // quantkit's ONNX export: the external data file's exact bytes (rotary caches included).
        const data = w.plan?.files.find((f) => f.name.endsWith('.onnx_data'));
        const activationBytes = ['fp16', 'q4f16'].includes(wf.quantkit?.onnxDtype ?? '') || wf.dtype === 'fp16' ? 2 : 4;
        const { total, ...components } = onnxRuntimeMemory(dims, data?.bytes ?? w.total, { tokens: seq, activationBytes });
        est = { ...base, dtype: wf.dtype, peak_bytes: total, peak_kind: 'host', components, terms: explained(components), assumptions: { scenario, runtime: 'onnxruntime-node (CPU, one prompt of seq tokens)', dtype: wf.dtype, ...(wf.quantkit ? { quantkit: wf.quantkit } : {}), tokens: seq, activation_bytes: activationBytes } };
        return withFit(est, model, o);
      }
      const components = !dims ? { weights: w.total } : inferenceComponents({ dims, weights: w.total, dequantScratchParams: bnb ? w.largestQuantizedParams : 0, activationBytes: 2, kvBytes, batch, seq, attention, logitsAllPositions: o.logitsAllPositions ?? false, layout });
      est = { ...base, dtype: wf.dtype, peak_bytes: 0, peak_kind: peakKind, components, terms: explained(components), assumptions: { scenario, dtype: wf.dtype, ...(wf.quantkit ? { quantkit: wf.quantkit } : {}), batch, seq, kv_bytes: kvBytes, attention, method: 'inference', gpus, parallel: layout.label } };
      est.peak_bytes = Object.values(components).reduce((a, b) => a + b, 0);
    } else {
      est = await finetuneEstimate(model, o, base, batch, seq, attention, layout, peakKind);
    }
    if (peakKind === 'device') {
      const ctx = o.cudaContextBytes ?? DEFAULT_CUDA_CONTEXT;
      est.components.cuda_context = ctx;
      est.terms.push({ name: 'cuda_context', bytes: ctx, why: 'CUDA context and kernels, outside the allocator: nvidia-smi counts it, max_memory_allocated does not (--cuda-context)' });
      est.peak_bytes += ctx;
    }
  }

  return withFit(est, model, o);
}

async function withFit(est: Estimate, model: EstimateModel, o: EstimateOptions): Promise<Estimate> {
  const name = o.device ?? o.gpu;
  if (name) {
    const device = findDevice(name);
    est.fits = fitOn(est.peak_bytes, device);
    if (device.kind !== 'gpu' && est.scenario === 'inference' && est.peak_kind !== 'host') est.fits.note += '; this is a PyTorch-on-GPU total: phones and laptops run GGUF (--runtime llama.cpp) or ONNX files';
    if (o.recommend !== false && !est.fits.fits) est.cheapest_fit = await cheapestFit(model, o, device);
  }
  return est;
}

/**
 * The first configuration, from most faithful to most frugal, whose peak fits the device: LLMem's
 * question ("which method before running out of memory") asked of our own formulas.
 */
async function cheapestFit(model: EstimateModel, o: EstimateOptions, device: Device): Promise<Estimate['cheapest_fit']> {
  const scenario = o.scenario ?? 'inference';
  const common: EstimateOptions = { ...o, gpu: undefined, device: undefined, recommend: false, bits: undefined, dtype: undefined, keep: undefined, bitsFor: undefined, ggufType: undefined, pure: undefined };
  const candidates: [string, EstimateOptions][] = [];
  if (scenario === 'inference' && o.runtime === 'llama.cpp') {
    // A GGUF for a phone or laptop: smaller llama.cpp types first, then shorter contexts at 4 bits.
    for (const t of ['Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M', 'IQ4_XS', 'Q3_K_S', 'IQ2_XXS'] as const) candidates.push([`GGUF ${t}`, { ...common, dtype: `gguf:${t}` }]);
    for (const seq of [2048, 1024, 512]) if ((o.seq ?? 2048) > seq) candidates.push([`GGUF Q4_K_M, context ${seq}`, { ...common, dtype: 'gguf:Q4_K_M', seq }], [`GGUF IQ2_XXS, context ${seq}`, { ...common, dtype: 'gguf:IQ2_XXS', seq }]);
  } else if (scenario === 'inference') {
    // gguf-raw prices the same Q8_0/Q4_0 blocks for any architecture (runnable GGUF needs a mapped one).
    candidates.push(['bf16 weights', { ...common, dtype: 'bf16' }], ['int8 (bitsandbytes)', { ...common, dtype: 'int8' }], ['quantkit int8 (GGUF Q8_0)', { ...common, bits: 8, format: 'gguf-raw' }], ['nf4 (bitsandbytes, double quant)', { ...common, dtype: 'nf4', doubleQuant: true }], ['quantkit int4 (GGUF Q4_0)', { ...common, bits: 4, format: 'gguf-raw' }]);
    for (const seq of [1024, 512]) if ((o.seq ?? 2048) > seq) candidates.push([`quantkit int4 (GGUF Q4_0), context ${seq}`, { ...common, bits: 4, format: 'gguf-raw', seq }]);
  } else if (scenario === 'finetune') {
    for (const g of [1, 2, 4, 8]) {
      const par = g === 1 ? undefined : 'fsdp';
      const on = g === 1 ? '1 GPU' : `${g} GPUs, FSDP`;
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
    if (e.peak_bytes <= device.bytes) return { description, options, peak_bytes: e.peak_bytes };
  }
  return null;
}

/** Why each inference, packed-size and llama.cpp component is what it is (--explain). */
const COMPONENT_REASONS: Record<string, string> = {
  weights: 'the weights in the chosen format (plain dtypes; bitsandbytes as transformers loads it: linear layers quantized, embeddings and head 16-bit; quantkit and llama.cpp files priced tensor by tensor)',
  kv_cache: 'KV cache: 2 × layers × kv_heads × head_dim × context × batch × bytes per element (GQA/MQA shrink it)',
  activations: "one layer's prefill working set (nothing is kept for backward); eager attention adds the score matrix",
  logits: 'logits of the last position (all positions with logitsAllPositions) and their fp32 softmax',
  dequant_scratch: 'bitsandbytes dequantizes a whole weight to 16 bits for prompt matmuls, and quantizing on load holds a 16-bit copy: two copies of the largest quantized layer',
  runtime_buffers: "cuBLAS workspaces and the caching allocator's rounding",
  output_buffer: "llama.cpp's output buffer: n_vocab × 4 bytes per kept row",
  compute_buffer: "llama.cpp's scheduler buffer for one micro-batch: the larger of the feed-forward and output moments, in f32",
};

function explained(components: Components): Estimate['terms'] {
  return Object.entries(components).map(([name, bytes]) => ({ name, bytes, why: COMPONENT_REASONS[name] ?? `file ${name} as quantize writes it` }));
}

async function finetuneEstimate(model: EstimateModel, o: EstimateOptions, base: Omit<Estimate, 'peak_bytes' | 'peak_kind' | 'components' | 'terms' | 'assumptions'>, batch: number, seq: number, attention: Attention, layout: ReturnType<typeof parseParallel>, peakKind: PeakKind): Promise<Estimate> {
  const method = o.method ?? 'full';
  if (!['full', 'lora', 'qlora'].includes(method)) throw new QuantkitError('ERR_USAGE', `--method must be full, lora or qlora (got ${method})`);
  if (o.optimizer !== undefined && !(OPTIMIZERS as readonly string[]).includes(o.optimizer)) throw new QuantkitError('ERR_USAGE', `--optimizer must be one of ${OPTIMIZERS.join(', ')} (got ${o.optimizer})`);
  const dims = model.dims;
  const settings = resolveSettings({
    framework: o.framework, method, gpus: layout.gpus, hidden: dims?.hidden ?? 0, gradCheckpointing: o.gradCheckpointing, loss: o.loss, chunkedLoss: o.chunkedLoss,
    precision: o.precision, adapterBytes: o.adapterBytes, optimizer: o.optimizer, wrap: o.wrap, sharedUnits: o.sharedUnits, accumulateUnsynced: o.accumulateUnsynced,
    gradAccumulation: o.gradAccumulation, cpuOffload: o.cpuOffload, reduceBytes: o.reduceBytes, quantizer: o.quantizer, kbitUpcast: o.kbitUpcast, quantizedHead: o.quantizedHead,
    dequantBytes: o.dequantBytes, loraDropout: o.loraDropout, zero: o.zeroBuckets,
  });
  const precision: Precision = settings.precision;
  if (!['mixed', 'bf16', 'fp16', 'fp32'].includes(precision)) throw new QuantkitError('ERR_USAGE', `--precision must be mixed, bf16, fp16 or fp32 (got ${precision})`);
  const wordBytes = precision === 'fp32' ? 4 : 2;
  const rank = positive('--lora-rank', o.loraRank, 8);
  const targets = o.loraTargets ?? ['q_proj', 'v_proj'];
  const units = modelUnits(model);
  const lora = method === 'full' ? null : loraLayer(model.checkpoint.tensors, rank, targets, dims, settings.loraDropout, settings.adapterBytes, wordBytes);
  const trainable = method === 'full' ? model.params : loraParams(model.checkpoint.tensors, rank, targets, dims);
  let frozenBytes = 0;
  let layerBytes = units.layerParams * wordBytes;
  let rootBytes = units.rootParams * wordBytes;
  let dequant = 0;
  if (method !== 'full') {
    const wf: WeightFormat = method === 'qlora' ? { dtype: 'nf4', doubleQuant: o.doubleQuant ?? true } : { dtype: precision === 'fp32' ? 'fp32' : 'bf16' };
    const w = await weightBytes(model, wf);
    // prepare_model_for_kbit_training keeps embeddings, head and norms in fp32: 2 more bytes each.
    frozenBytes = w.total + (method === 'qlora' && settings.kbitUpcast ? units.unquantizedParams * 2 : 0);
    layerBytes = await tensorsBytes(model, units.layerTensors, wf);
    rootBytes = await tensorsBytes(model, units.rootTensors, wf);
    dequant = method === 'qlora' ? w.largestQuantizedParams : 0;
  }
  const convention: Convention = o.convention ?? 'pytorch';
  const terms = finetuneTerms({
    dims, params: model.params, trainable, frozenBytes, layers: units.layers, layerParams: units.layerParams, layerBytes, rootParams: units.rootParams, rootBytes,
    layerTrainable: lora?.params ?? units.layerParams, largestTrainableParams: lora?.largestTensor ?? model.largestTensorParams, largestTensorParams: model.largestTensorParams,
    dequantScratchParams: dequant, loraInputsPerToken: lora?.inputBytesPerToken ?? 0, method, settings, convention, batch, seq, attention,
    dropout: o.dropout ?? false, compile: o.compile ?? false, optimizerInBackward: o.optimizerInBackward ?? false, offloadActivations: o.offloadActivations ?? false,
    gradientsPersist: o.gradientsPersist ?? false, layout,
  });
  if (peakKind === 'device' && convention === 'pytorch' && batch > 0) terms.push(allocatorReserve(terms));
  const components: Components = Object.fromEntries(terms.map((t) => [t.name, t.bytes]));
  // Only the settings that change this estimate: quantization ones for QLoRA, sharding ones when sharded.
  const sharded = layout.dataParallel.startsWith('fsdp') || layout.dataParallel === 'hsdp';
  const relevant: Partial<Record<keyof TrainingSettings, boolean>> = {
    adapterBytes: method !== 'full', loraDropout: method !== 'full', quantizer: method === 'qlora', kbitUpcast: method === 'qlora', quantizedHead: method === 'qlora', dequantBytes: method === 'qlora',
    wrap: sharded, sharedUnits: sharded && method !== 'full', reduceBytes: sharded, zero: layout.dataParallel.startsWith('zero'), accumulateUnsynced: settings.gradAccumulation > 1, cpuOffload: layout.dp > 1,
  };
  const resolved: Estimate['settings'] = {};
  for (const [k, why] of Object.entries(settings.why)) if (relevant[k as keyof TrainingSettings] !== false) resolved[k] = { value: settings[k as keyof TrainingSettings], why };
  return {
    ...base, dtype: precision, peak_bytes: allocatedPeak(terms), peak_kind: peakKind, components,
    terms: terms.map((t) => ({ name: t.name, bytes: t.bytes, why: t.why, phase: t.phase, ...(t.outsideAllocator ? { outside_allocator: true } : {}) })),
    settings: resolved,
    assumptions: {
      scenario: 'finetune', method, ...(settings.framework ? { framework: settings.framework } : {}), precision, optimizer: settings.optimizer, trainable_params: trainable,
      ...(method !== 'full' ? { lora_rank: rank, lora_targets: targets } : {}), batch, seq, grad_checkpointing: settings.gradCheckpointing, loss: settings.loss, attention,
      ...(settings.gradAccumulation > 1 ? { grad_accumulation: settings.gradAccumulation } : {}), gpus: layout.gpus, parallel: layout.label, convention, peak_rule: peakRule(terms),
    },
  };
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
