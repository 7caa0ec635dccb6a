/**
 * Fine-tuning memory per GPU, term by term (never one multiplier), each term with the framework behaviour
 * it models. Terms belong to a phase:
 *  - static: held for the whole step (weights, optimizer states, persistent gradients);
 *  - transient: communication buffers alive around both ends of the step (FSDP's gathered units and the
 *    root it keeps unsharded, ZeRO-3's live parameters, bucket buffers, the QLoRA dequantized weight);
 *  - forward: the working set at the end of the forward pass (activations, logits and loss), plus the
 *    largest of the 'forward-max' alternatives (with checkpointing: the loss, or one layer recomputed);
 *  - backward: what the end of backward and the optimizer step add (fresh gradients, 8-bit optimizer's
 *    fp32 states of one tensor). With zero_grad(set_to_none=True), PyTorch's default since 2.0,
 *    gradients appear as activations are freed, so the two ends are not held together.
 * allocated peak = static + transient + max(forward + max(forward-max), backward), terms held outside
 * the allocator (paged optimizer states) excluded; the device peak adds the allocator's reserve and the
 * CUDA context.
 */
import type { ModelDims } from './architectures.js';
import { type Attention, checkpointedBytesPerToken, layerBytesPerToken } from './activations.js';
import type { Method, TrainingSettings } from './frameworks.js';
import { type ParallelLayout, isFsdp, zeroStage } from './parallel.js';
import { RUNTIME_BUFFERS } from './scenarios.js';
import { stageLayers, stateDivisors } from './sharding.js';

export type Phase = 'static' | 'transient' | 'forward' | 'forward-max' | 'backward';

export interface Term {
  name: string;
  bytes: number;
  phase: Phase;
  /** The framework behaviour this term models, and how it was sized. */
  why: string;
  /** Held outside PyTorch's caching allocator (paged optimizer states): not in max_memory_allocated. */
  outsideAllocator?: boolean;
}

/**
 * Whose accounting of model states: 'pytorch' (what PyTorch and the frameworks allocate, buffers
 * included), 'zero-paper' (the ZeRO paper's analytic 2+2+12 bytes, no buffers), 'deepspeed' (DeepSpeed's
 * estimator: an fp32 gradient partition, full fp16 gradients under ZeRO-2, four bytes per parameter of
 * the largest layer gathered under ZeRO-3).
 */
export type Convention = 'pytorch' | 'zero-paper' | 'deepspeed';

export interface FinetuneInputs {
  dims: ModelDims | null;
  params: number;
  trainable: number;
  /** Bytes of the frozen base as loaded (LoRA: 16-bit; QLoRA: NF4 + the 16-bit rest). */
  frozenBytes: number;
  /** Decoder layers, the largest layer's parameters and its bytes as stored (frozen format for LoRA). */
  layers: number;
  layerParams: number;
  layerBytes: number;
  /** Parameters and bytes outside the layers (embeddings, head: FSDP's root unit). */
  rootParams: number;
  rootBytes: number;
  /** Trainable parameters in one layer (LoRA adapters) and the largest trainable tensor. */
  layerTrainable: number;
  largestTrainableParams: number;
  largestTensorParams: number;
  /** Largest quantized linear (QLoRA dequantization scratch). */
  dequantScratchParams: number;
  /** Bytes per token and layer LoRA keeps of its inputs (dropped copies and masks, or fp32 casts). */
  loraInputsPerToken: number;
  method: Method;
  settings: TrainingSettings;
  convention: Convention;
  batch: number;
  seq: number;
  attention: Attention;
  dropout: boolean;
  compile: boolean;
  optimizerInBackward: boolean;
  offloadActivations: boolean;
  gradientsPersist: boolean;
  layout: ParallelLayout;
}

const inGB = (n: number) => `${(n / 1e9).toFixed(2)} GB`;

export function finetuneTerms(x: FinetuneInputs): Term[] {
  const L = x.layout;
  const s = x.settings;
  const terms: Term[] = [];
  const put = (name: string, bytes: number, phase: Phase, why: string, outsideAllocator = false) => {
    if (bytes > 0) terms.push({ name, bytes: Math.ceil(bytes), phase, why, ...(outsideAllocator ? { outsideAllocator } : {}) });
  };
  const z = zeroStage(L);
  const fsdp = isFsdp(L) && L.shardGroup > 1;
  const div = stateDivisors(L, x.convention === 'deepspeed');
  const mixed = s.precision === 'mixed';
  const wordBytes = s.precision === 'fp32' ? 4 : 2;
  const t = x.trainable;
  const full = x.method === 'full';
  const offload = s.cpuOffload && z >= 1;
  const onCpu = 'on the CPU: CPU offload keeps sharded states in host memory';

  // --- model states -------------------------------------------------------------------------------
  if (full) {
    if (mixed && fsdp) put('sharded_params_fp32', offload ? 0 : (x.params * 4) / div.model / div.params, 'static', `fp32 parameters: FSDP mixed precision keeps the sharded parameters in fp32 (they are the master copy; 16-bit copies exist only in gathered units); ${div.why.params}`);
    else put('weights', offload && z >= 3 ? 0 : (x.params * wordBytes) / div.model / div.params, 'static', `${wordBytes * 8}-bit weights of every parameter; ${div.why.params}`);
  } else {
    const upcast = s.kbitUpcast ? '; non-quantized weights upcast to fp32 (prepare_model_for_kbit_training)' : '';
    put('frozen_weights', offload && z >= 3 ? 0 : x.frozenBytes / div.model / div.params, 'static', `frozen base weights (${x.method === 'qlora' ? 'NF4 blocks + 16-bit embeddings and norms' : '16-bit'})${upcast}; ${div.why.params}`);
    put('adapter_weights', (t * s.adapterBytes) / div.model / div.params, 'static', `LoRA adapters at ${s.adapterBytes} bytes (${s.why.adapterBytes}); ${div.why.params}`);
  }
  if (mixed && !(full && fsdp)) put('master_weights_fp32', offload ? 0 : (t * 4) / div.model / div.optimizer, 'static', `fp32 master copy of the trained parameters (mixed precision); ${div.why.optimizer}`);
  const trainBytes = full ? (mixed ? 4 : wordBytes) : mixed ? 4 : s.adapterBytes;
  const paged = s.optimizer.startsWith('paged-');
  const eightBit = s.optimizer.endsWith('8bit');
  const stateBytes = s.optimizer === 'adamw' ? 2 * trainBytes
    : s.optimizer === 'paged-adamw' ? 8 // bitsandbytes 32-bit optimizers keep fp32 states whatever the parameter dtype
    : eightBit ? 2 + 2 * (4 / 256) // two u8 states + an fp32 absmax per 256-block each
    : s.optimizer === 'sgd-momentum' ? trainBytes : 0;
  const stateWhy = s.optimizer === 'adamw' ? `AdamW: two states in the trained parameters' dtype (${trainBytes} bytes each)` : s.optimizer === 'paged-adamw' ? 'bitsandbytes paged AdamW: two fp32 states' : eightBit ? 'bitsandbytes 8-bit AdamW: two u8 states + fp32 block constants' : 'SGD momentum: one state';
  if (paged) put('optimizer_states_paged', offload ? 0 : (t * stateBytes) / div.model / div.optimizer, 'static', `${stateWhy}, in CUDA unified memory (cudaMallocManaged): outside PyTorch's allocator and evicted to the host when the GPU runs short, so not part of the peak; ${div.why.optimizer}`, true);
  else put('optimizer_states', offload ? 0 : (t * stateBytes) / div.model / div.optimizer, 'static', `${stateWhy} (${s.why.optimizer}); ${div.why.optimizer}`);
  if (offload) terms.push({ name: 'offloaded_states', bytes: 0, phase: 'static', why: `optimizer states${z >= 3 ? ', sharded parameters' : ''} and gradient partitions ${onCpu} (${s.why.cpuOffload})` });

  // Gradients: which parameters get one, in what dtype, sharded or not.
  const gradBytes = full ? (mixed && fsdp ? 4 : wordBytes) : s.adapterBytes;
  // FSDP1 use_orig_params=True with frozen and trainable parameters in one unit materialises the whole
  // unit's gradient (zeros for the frozen part): gradient memory as if nothing were frozen.
  const sharedFrozen = !full && fsdp && s.sharedUnits ? x.layers * x.layerParams : 0;
  const gradBearing = sharedFrozen ? sharedFrozen : t;
  const gradUnitBytes = sharedFrozen ? wordBytes : gradBytes;
  const unsynced = s.gradAccumulation > 1 && s.accumulateUnsynced && (fsdp || L.dataParallel === 'ddp');
  const gradWhy = sharedFrozen ? `every parameter of the units holding adapters (${s.why.sharedUnits})` : full ? 'one per parameter' : 'one per adapter parameter';
  if (x.convention === 'deepspeed' && mixed) put('gradients_fp32_partition', (t * 4) / div.model / div.optimizer, 'static', `DeepSpeed's fp32 gradient partition beside the optimizer; ${div.why.optimizer}`);
  const dsZero3Fused = x.convention === 'deepspeed' && z === 3 && mixed; // reduced straight into the fp32 partition
  if (x.optimizerInBackward) put('gradients', x.largestTensorParams * gradBytes, 'backward', 'optimizer step fused into backward: only the largest tensor\'s gradient exists at a time');
  else if (unsynced) put('gradients_unsharded', (gradBearing * gradUnitBytes) / div.model, 'static', `${gradWhy}, unsharded and kept across the ${s.gradAccumulation} accumulation micro-steps (${s.why.accumulateUnsynced})`);
  else if (!dsZero3Fused) put('gradients', offload && z >= 2 ? 0 : (gradBearing * gradUnitBytes) / div.model / div.gradients, x.gradientsPersist ? 'static' : 'backward', `${gradWhy} at ${gradUnitBytes} bytes; ${div.why.gradients}${x.gradientsPersist ? '; kept between steps (zero_grad without set_to_none, PyTorch < 2.0)' : ''}`);
  if (x.convention === 'pytorch' && L.dataParallel === 'ddp' && L.dp > 1) put('ddp_gradient_buckets', (t * gradBytes) / div.model, 'static', 'DDP all-reduce buckets: a second full copy of the gradients (gradient_as_bucket_view=False, the default)');

  // --- communication buffers ----------------------------------------------------------------------
  const layersHere = stageLayers(Math.max(1, x.layers), L);
  if (x.convention === 'zero-paper' && z === 3) put('zero3_gathered_layer', 2 * wordBytes * x.largestTensorParams, 'static', 'the largest layer gathered for its forward/backward (ZeRO paper)');
  else if (x.convention === 'deepspeed' && z === 3) put('zero3_gathered_layer', 4 * x.largestTensorParams, 'static', "DeepSpeed's estimator: 4 bytes per parameter of the largest layer");
  else if (x.convention === 'pytorch' && fsdp) {
    // Gathered units hold 16-bit compute copies (or the NF4 storage for QLoRA).
    const perParam = full ? wordBytes : x.layerBytes / Math.max(1, x.layerParams);
    const unit = s.wrap === 'model' ? x.params * perParam : s.wrap === 'linear' ? x.largestTensorParams * perParam : x.layerBytes > 0 && !full ? x.layerBytes : x.layerParams * perParam;
    const inFlight = L.dataParallel === 'fsdp-grad-op' ? layersHere : Math.min(2, layersHere);
    const unitWhy = s.wrap === 'model' ? 'the whole model is one FSDP unit (no auto-wrap policy)' : s.wrap === 'linear' ? 'each Linear is an FSDP unit' : `each decoder layer is an FSDP unit (${s.why.wrap})`;
    put('fsdp_gathered_units', (inFlight * unit) / L.tp, 'transient', L.dataParallel === 'fsdp-grad-op'
      ? `SHARD_GRAD_OP keeps every unit of this stage unsharded from its forward to its backward: ${layersHere} × ${inGB(unit)}`
      : `the unit being computed and the next one prefetched (FSDP backward_prefetch=BACKWARD_PRE / FSDP2 implicit prefetch, at most two all-gathers in flight): 2 × ${inGB(unit)}; ${unitWhy}`);
    if (s.wrap !== 'model') put('fsdp_root_unsharded', x.rootBytes / L.tp, 'transient', 'parameters outside the layers (embeddings, output head, final norm) form the root unit, which FSDP does not reshard after forward because backward needs it at once');
    const unitGradParams = full || sharedFrozen ? x.layerParams : x.layerTrainable;
    const unitGrad = unitGradParams * (full || sharedFrozen ? (mixed ? 2 : wordBytes) : s.adapterBytes);
    const reduceCopy = s.reduceBytes > (mixed ? 2 : wordBytes) ? unitGradParams * s.reduceBytes : 0;
    put('fsdp_unit_gradient', (unitGrad + reduceCopy) / L.tp, 'transient', `one unit's unsharded gradient before its reduce-scatter${reduceCopy ? `, plus its copy in the ${s.reduceBytes * 8}-bit reduce dtype` : ''}${sharedFrozen ? ' (the whole unit: frozen parameters share it)' : ''}`);
  } else if (x.convention === 'pytorch' && z >= 1) {
    const zb = s.zero;
    const pBytes = full ? 2 : x.frozenBytes / Math.max(1, x.params);
    if (z === 3) {
      const live = Math.min(zb.maxLiveParameters, x.largestTensorParams + zb.prefetchBucket);
      put('zero3_live_parameters', live * pBytes / L.tp, 'transient', `ZeRO-3 gathers each module's parameters on use and prefetches stage3_prefetch_bucket_size = ${zb.prefetchBucket.toExponential(1)} elements ahead, capped by stage3_max_live_parameters = ${zb.maxLiveParameters.toExponential(1)}`);
    }
    const reduce = Math.min(zb.reduceBucket, t / div.model);
    put('zero_reduce_bucket', reduce * 2, z === 3 ? 'transient' : 'backward', `gradients collected into a reduce_bucket_size = ${zb.reduceBucket.toExponential(1)} element buffer before each reduce`);
    if (z < 3 && full) put('zero_allgather_bucket', Math.min(zb.allgatherBucket, t / div.model) * 2, 'backward', `updated 16-bit partitions all-gathered through allgather_bucket_size = ${zb.allgatherBucket.toExponential(1)} element buckets after the step`);
  }

  // --- activations, logits, loss --------------------------------------------------------------------
  if (x.dims && x.batch > 0) {
    const d = x.dims;
    const tokens = x.batch * x.seq;
    const opts = { bytes: wordBytes, attention: x.attention, dropout: x.dropout, softmaxFp32: true, tensorParallel: L.tp, fusedMlp: x.compile };
    const perLayer = layerBytesPerToken(d, x.seq, opts) + x.loraInputsPerToken / L.tp;
    const layerSet = perLayer * tokens;
    const vocabShard = d.vocab / L.tp;
    // Sized at the start of backward, the loss's worst moment: what forward kept plus the fresh gradients.
    const loss = !d.decoder ? 0
      : s.loss === 'chunked' ? tokens * vocabShard * (wordBytes + (x.compile ? 0 : 4))
      : s.loss === 'chunked-lowp' ? tokens * vocabShard * 2 * wordBytes
      : tokens * vocabShard * 12;
    const lossWhy = s.loss === 'chunked' ? `16-bit logits${x.compile ? '; the compiled loss fuses the fp32 upcast and log-softmax away' : ' and every chunk\'s fp32 log-softmax, kept for backward'} (${s.why.loss})`
      : s.loss === 'chunked-lowp' ? `logit chunks and their log-softmax kept for backward, both in the compute dtype (${s.why.loss})`
      : `at the start of backward: the fp32 log-softmax kept by forward, its fp32 gradient and the logits' fp32 gradient (the logits themselves are freed first: torchtune's del logits, the Trainer's discarded outputs) (${s.why.loss})`;
    const pp = L.pp > 1 ? `; 1F1B: the first of ${L.pp} stages holds ${L.pp} micro-batches of its ${layersHere} layers = one micro-batch of every layer` : '';
    const loraDrop = x.loraInputsPerToken ? `, the adapters' own copies of their inputs (${s.loraDropout === 'off' ? 'cast to the adapter dtype' : s.why.loraDropout})` : '';
    if (!s.gradCheckpointing && !x.offloadActivations) {
      put('activations', d.layers * layerSet, 'forward', `every layer's saved tensors (norm inputs in fp32, q/k/v and attention output, MLP intermediates${loraDrop}) for ${tokens} tokens${pp}`);
      put('logits_and_loss', loss, 'forward', lossWhy);
    } else {
      if (!x.offloadActivations) put('activation_checkpoints', d.layers * checkpointedBytesPerToken(d, wordBytes) * tokens, 'forward', `activation checkpointing keeps each layer's input (${s.why.gradCheckpointing})${pp}`);
      put('logits_and_loss', loss, 'forward-max', `${lossWhy}; never alive together with a recomputed layer`);
      put('recompute_working_set', layerSet, 'forward-max', 'one layer\'s tensors recomputed during backward');
    }
    if (full) put('output_layer_gradient', (d.vocab * d.hidden * gradBytes) / div.model / div.gradients, 'forward', 'the output layer\'s gradient, produced first in backward next to the logits\' gradient');
    if (L.tp > 1) put('tp_allgather_buffer', (tokens * d.hidden * wordBytes) / L.pp, 'transient', 'tensor parallelism all-gathers a layer\'s input in backward (LLMem\'s TP buffer)');
    if (L.pp > 1) put('pp_p2p_buffers', 2 * tokens * d.hidden * wordBytes, 'transient', 'pipeline send/receive buffers of one micro-batch\'s activations and gradients');
    if (x.method === 'qlora' && x.dequantScratchParams) {
      const largest = Math.max(x.dequantScratchParams, s.quantizedHead && d.decoder ? d.vocab * d.hidden : 0);
      put('dequant_scratch', (s.dequantBytes * largest) / L.tp, 'transient', `each 4-bit weight is dequantized for its matmul in forward, and again for the input gradient in backward (${s.quantizer === 'torchao' ? 'torchao linear_nf4' : 'bitsandbytes MatMul4Bit'}): the largest quantized linear (${largest.toLocaleString('en-US')} parameters${s.quantizedHead ? ', the quantized output head' : ''}) at ${s.dequantBytes} bytes each (${s.why.dequantBytes})`);
    }
  }
  if (eightBit) put('optimizer_step_fp32_states', x.largestTrainableParams * 8, 'backward', '8-bit AdamW dequantizes one tensor\'s two states to fp32 for its update: sized by the largest trained tensor');
  if (x.batch > 0 && x.convention === 'pytorch') put('runtime_buffers', RUNTIME_BUFFERS, 'static', 'cuBLAS workspaces and the caching allocator\'s rounding');
  return terms;
}

/**
 * What nvidia-smi shows above the allocated peak during training: PyTorch's caching allocator keeps freed
 * blocks for reuse and splits them imperfectly as activation and gradient sizes vary, so reserved memory
 * runs above max_memory_allocated. Empirical: on the development set's four training rows measured with
 * nvidia-smi (HF anatomy BERT-large at batch 4 and 1, PEFT's FSDP and ZeRO-3 QLoRA of Llama-2-70B) it
 * ran 7-22% above the allocated peak quantkit predicts; 12% is added to the device peak.
 */
export const ALLOCATOR_RESERVE = 0.12;

/** The allocated peak over the step's two ends (see the file comment); paged terms are outside it. */
export function allocatedPeak(terms: Term[]): number {
  const live = terms.filter((t) => !t.outsideAllocator);
  const sum = (p: Phase) => live.filter((t) => t.phase === p).reduce((a, t) => a + t.bytes, 0);
  const largest = Math.max(0, ...live.filter((t) => t.phase === 'forward-max').map((t) => t.bytes));
  return sum('static') + sum('transient') + Math.max(sum('forward') + largest, sum('backward'));
}

/** The device peak's extra term: the allocator's reserve above the allocated peak. */
export function allocatorReserve(terms: Term[]): Term {
  return { name: 'allocator_reserve', bytes: Math.ceil(ALLOCATOR_RESERVE * allocatedPeak(terms)), phase: 'static', why: `nvidia-smi counts what PyTorch's caching allocator reserved: ${ALLOCATOR_RESERVE * 100}% above the allocated peak (empirical, from the development set's nvidia-smi training rows)` };
}

export function peakRule(terms: Term[]): string {
  const names = (p: Phase) => terms.filter((t) => t.phase === p && t.bytes > 0).map((t) => t.name);
  const fwd = [...names('forward'), ...(names('forward-max').length ? [`max(${names('forward-max').join(', ')})`] : [])];
  return `static (${[...names('static'), ...names('transient')].join(', ')}) + max(forward: ${fwd.join(' + ') || 'none'}; backward: ${names('backward').join(' + ') || 'none'})`;
}

/** LoRA's modules: HF names, and the fused tensors that hold several of them. */
const FUSED_QKV = /(qkv_proj|query_key_value|c_attn|Wqkv)$/;
const FUSED_GATE_UP = /gate_up_proj$/;

interface Adapted {
  module: string;
  dIn: number;
  dOut: number;
}

/**
 * The linear modules LoRA adapts in one checkpoint: targets by module name (q_proj, v_proj, ..., or
 * all-linear). Part names on a fused matrix (q_proj and v_proj on Phi-3's qkv_proj or GPT-NeoX's
 * query_key_value) adapt those parts, as Lit-GPT's LoRAQKVLinear does.
 */
function adaptedModules(tensors: { name: string; shape: number[] }[], targets: string[], dims: ModelDims | null): Adapted[] {
  const out: Adapted[] = [];
  const all = targets.includes('all-linear');
  for (const t of tensors) {
    if (t.shape.length !== 2 || !t.name.endsWith('.weight') || /(embed|lm_head|wte|wpe|embed_out|word_embeddings|classifier|pooler)/.test(t.name)) continue;
    const module = t.name.slice(0, -'.weight'.length).split('.').pop()!;
    // nn.Linear stores [out, in]; GPT-2's Conv1D [in, out]: LoRA's r·(in + out) is the same either way.
    const [a, b] = t.shape as [number, number];
    const gpt2 = module === 'c_attn' && dims?.architecture === 'gpt2';
    const [dOut, dIn] = gpt2 ? [b, a] : [a, b];
    // Part names (q_proj, v_proj, gate_proj ...) on a fused matrix adapt its parts; the fused name itself,
    // or all-linear, adapts the whole matrix as one module (PEFT).
    if (!all && !targets.includes(module) && FUSED_QKV.test(module) && dims) {
      const q = dims.heads * dims.headDim;
      const kv = (dOut - q) / 2;
      for (const [part, width] of [['q_proj', q], ['k_proj', kv], ['v_proj', kv]] as const) if (targets.includes(part)) out.push({ module: part, dIn, dOut: width });
    } else if (!all && !targets.includes(module) && FUSED_GATE_UP.test(module)) {
      for (const part of ['gate_proj', 'up_proj']) if (targets.includes(part)) out.push({ module: part, dIn, dOut: dOut / 2 });
    } else if (all || targets.includes(module)) out.push({ module, dIn, dOut });
  }
  return out;
}

/** LoRA adapter parameters: r·(d_in + d_out) for every adapted module. */
export function loraParams(tensors: { name: string; shape: number[] }[], rank: number, targets: string[], dims: ModelDims | null = null): number {
  return adaptedModules(tensors, targets, dims).reduce((n, m) => n + rank * (m.dIn + m.dOut), 0);
}

const LAYER0 = /\.(?:layers|h|layer|blocks)\.0\./;

/**
 * LoRA's footprint in one layer: its adapter parameters, and the bytes per token its inputs keep. PEFT
 * casts each adapted module's input to the adapter dtype before dropout; with dropout the dropped copy
 * (adapter dtype) and a one-byte mask are kept for backward, without dropout the cast copy is kept when
 * the adapters' dtype differs from the compute dtype (fp32 adapters over a bf16 model), else nothing
 * (the base layer's input is shared).
 */
export function loraLayer(tensors: { name: string; shape: number[] }[], rank: number, targets: string[], dims: ModelDims | null, dropout: TrainingSettings['loraDropout'], adapterBytes: number, computeBytes: number) {
  const mods = adaptedModules(tensors.filter((t) => LAYER0.test(t.name)), targets, dims);
  const params = mods.reduce((n, m) => n + rank * (m.dIn + m.dOut), 0);
  const perInput = dropout !== 'off' ? adapterBytes + 1 : adapterBytes !== computeBytes ? adapterBytes : 0;
  let inputs = mods.reduce((n, m) => n + m.dIn, 0);
  if (dropout === 'per-input') {
    const seen = new Map<string, number>();
    for (const m of mods) seen.set(/^(q|k|v)_proj$/.test(m.module) ? 'attn-in' : /^(gate|up)_proj$/.test(m.module) ? 'mlp-in' : m.module, m.dIn);
    inputs = [...seen.values()].reduce((a, b) => a + b, 0);
  }
  const largest = mods.reduce((n, m) => Math.max(n, rank * Math.max(m.dIn, m.dOut)), 0);
  return { params, inputBytesPerToken: inputs * perInput, largestTensor: largest };
}
