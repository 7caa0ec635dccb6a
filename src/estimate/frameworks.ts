/**
 * What each fine-tuning framework does by default that changes memory, so `--framework NAME` predicts
 * the run a user of that framework actually gets. Every default is overridable by its explicit option,
 * and every one carries the framework behaviour it models (printed by `estimate --explain`).
 *
 * Sources (read for the facts, nothing copied):
 *  - torchtune recipes/configs (v0.3-0.6): `enable_activation_checkpointing: True`, `dtype: bf16` (no fp32
 *    master: torch AdamW keeps its states in the parameters' bf16), `CEWithChunkedOutputLoss` (8 chunks),
 *    LoRA adapters in the model dtype, `lora_dropout: 0.0`; distributed recipes shard with FSDP2
 *    `fully_shard` per decoder layer and once more at the root (training/_distributed.py `shard_model`),
 *    gradients are reduce-scattered every micro-step; QLoRA uses torchao's NF4Tensor, whose `linear_nf4`
 *    autograd function keeps only the NF4 weight for backward (not the input).
 *  - Lit-GPT / LitGPT (finetune/lora.py, 2023-2024): `bf16-true` precision (adapters and AdamW states in
 *    bf16), `lm_head_chunk_size=128` with `chunked_cross_entropy` computed in bf16, activation checkpointing
 *    only in the multi-GPU FSDP strategy (`activation_checkpointing_policy={Block}`), Fabric's FSDP (FSDP1,
 *    `use_orig_params=True`) wrapping whole `Block`s (LoRA and frozen weights in one unit: litgpt#1417,
 *    #1538) and `fabric.no_backward_sync` while accumulating, bitsandbytes for 4-bit with `PagedAdamW`.
 *  - Hugging Face Trainer + PEFT + Accelerate: `gradient_checkpointing=False`, the loss upcasts logits to
 *    fp32, PEFT keeps adapters in fp32 (`autocast_adapter_dtype`), `adamw_torch`; Accelerate wraps FSDP
 *    units by decoder layer and PEFT's `fsdp_auto_wrap_policy` puts the adapters in their own units;
 *    gradient accumulation runs under `no_sync` unless `sync_each_batch`; `prepare_model_for_kbit_training`
 *    upcasts every non-quantized parameter to fp32; DeepSpeed "auto" buckets are hidden² elements.
 *  - DeepSpeed's own defaults (docs: config-json, zero_optimization): reduce_bucket_size and
 *    allgather_bucket_size 5e8 elements, stage3_prefetch_bucket_size 5e7, stage3_max_live_parameters 1e9,
 *    bf16/fp16 with fp32 master weights and optimizer states.
 *  - axolotl example configs: `gradient_checkpointing: true`, flash attention, sample packing, 8-bit
 *    bitsandbytes AdamW (`adamw_bnb_8bit`) for LoRA and paged 8-bit AdamW for QLoRA, Trainer underneath.
 */
import { QuantkitError } from '../errors.js';

export const FRAMEWORKS = ['torchtune', 'litgpt', 'hf-trainer', 'deepspeed', 'axolotl'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

export type Method = 'full' | 'lora' | 'qlora';
export type Precision = 'mixed' | 'bf16' | 'fp16' | 'fp32';
export const OPTIMIZERS = ['adamw', 'adamw8bit', 'paged-adamw', 'paged-adamw8bit', 'sgd', 'sgd-momentum'] as const;
export type Optimizer = (typeof OPTIMIZERS)[number];
/**
 * How the loss holds logits: 'upcast' (16-bit logits, an fp32 copy and fp32 log-softmax, as transformers'
 * loss), 'chunked' (torchtune's CEWithChunkedOutputLoss: 16-bit logits, fp32 one chunk at a time),
 * 'chunked-lowp' (Lit-GPT: the output layer and cross-entropy in 128-token chunks, in the compute dtype).
 */
export const LOSSES = ['upcast', 'chunked', 'chunked-lowp'] as const;
export type LossImpl = (typeof LOSSES)[number];
/** The FSDP wrapping unit: each decoder layer (auto-wrap by layer class), each Linear, or the whole model. */
export const WRAP_UNITS = ['layer', 'linear', 'model'] as const;
export type WrapUnit = (typeof WRAP_UNITS)[number];
/** Who implements 4-bit QLoRA weights: bitsandbytes (Linear4bit) or torchao (NF4Tensor, torchtune). */
export type Quantizer = 'bitsandbytes' | 'torchao';
/**
 * LoRA dropout: 'off' (p = 0: PEFT and torchtune use an identity), 'per-module' (PEFT: every adapted
 * module has its own nn.Dropout, so q, k and v each keep a dropped copy of the same input), 'per-input'
 * (Lit-GPT's fused qkv LoRA: one dropout for the shared input).
 */
export type LoraDropout = 'off' | 'per-module' | 'per-input';

/** DeepSpeed ZeRO buffer sizes, in elements (its config keys). */
export interface ZeroBuckets {
  reduceBucket: number;
  allgatherBucket: number;
  prefetchBucket: number;
  maxLiveParameters: number;
}

/** Every setting an estimate resolves from explicit options, the framework preset and generic defaults. */
export interface TrainingSettings {
  framework: Framework | null;
  gradCheckpointing: boolean;
  loss: LossImpl;
  precision: Precision;
  /** Bytes per LoRA adapter parameter (fp32 under PEFT's autocast, the compute dtype otherwise). */
  adapterBytes: number;
  optimizer: Optimizer;
  wrap: WrapUnit;
  /** Frozen and trainable parameters share FSDP units (FSDP1 use_orig_params=True): gradients as if unfrozen. */
  sharedUnits: boolean;
  /** Gradient accumulation without reduce-scatter/all-reduce between micro-steps (no_sync). */
  accumulateUnsynced: boolean;
  gradAccumulation: number;
  cpuOffload: boolean;
  /** Bytes per element FSDP reduce-scatters gradients in (reduce_dtype). */
  reduceBytes: number;
  quantizer: Quantizer;
  /** prepare_model_for_kbit_training: non-quantized parameters upcast to fp32. */
  kbitUpcast: boolean;
  /** QLoRA: the output head is a 4-bit linear too (Lit-GPT quantizes every nn.Linear). */
  quantizedHead: boolean;
  /** Bytes per parameter of a 4-bit weight's transient dequantized copy (4: dequantized to fp16, then cast to bf16). */
  dequantBytes: number;
  /** LoRA dropout on the adapters' inputs: a dropped copy and its mask kept for backward. */
  loraDropout: LoraDropout;
  zero: ZeroBuckets;
  /** Why each setting has its value: the explicit option, or the framework behaviour it follows. */
  why: Partial<Record<keyof Omit<TrainingSettings, 'why' | 'framework'>, string>>;
}

/** DeepSpeed's documented defaults (zero_optimization). */
const DEEPSPEED_BUCKETS: ZeroBuckets = { reduceBucket: 5e8, allgatherBucket: 5e8, prefetchBucket: 5e7, maxLiveParameters: 1e9 };

interface Preset {
  summary: string;
  gradCheckpointing: (gpus: number) => [boolean, string];
  loss: [LossImpl, string];
  precision: (method: Method) => [Precision, string];
  adapterBytes: (precision: Precision) => [number, string];
  optimizer: (method: Method) => [Optimizer, string];
  wrap: [WrapUnit, string];
  sharedUnits: [boolean, string];
  accumulateUnsynced: [boolean, string];
  reduceBytes: [number, string];
  quantizer: [Quantizer, string];
  kbitUpcast: (gpus: number) => [boolean, string];
  quantizedHead: [boolean, string];
  dequantBytes: [number, string];
  loraDropout: [LoraDropout, string];
  zero: (hidden: number) => [ZeroBuckets, string];
}

const hfAuto = (hidden: number): [ZeroBuckets, string] => [
  { reduceBucket: hidden * hidden, allgatherBucket: 2e8, prefetchBucket: 0.9 * hidden * hidden, maxLiveParameters: 1e9 },
  'Trainer resolves DeepSpeed "auto" buckets to hidden² (reduce) and 0.9·hidden² (stage-3 prefetch); its ZeRO-2 example config uses allgather_bucket_size 2e8',
];

const PRESETS: Record<Framework, Preset> = {
  torchtune: {
    summary: 'torchtune recipes: pure bf16, activation checkpointing, chunked cross-entropy, FSDP2 per layer',
    gradCheckpointing: () => [true, 'torchtune configs set enable_activation_checkpointing: True'],
    loss: ['chunked', 'torchtune configs use CEWithChunkedOutputLoss (logits upcast to fp32 one chunk at a time)'],
    precision: () => ['bf16', 'torchtune trains in dtype: bf16 with no fp32 master copy'],
    adapterBytes: () => [2, 'torchtune LoRA adapters are created in the model dtype (bf16)'],
    optimizer: () => ['adamw', 'torchtune configs use torch.optim.AdamW, whose states follow the bf16 parameters (bf16 AdamW)'],
    wrap: ['layer', 'torchtune shard_model calls fully_shard on every decoder layer, then on the root'],
    sharedUnits: [false, 'FSDP2 shards per parameter: frozen weights get no gradient even inside a LoRA layer'],
    accumulateUnsynced: [false, 'torchtune reduce-scatters gradients on every micro-step (no no_sync)'],
    reduceBytes: [2, 'no FSDP mixed-precision policy: gradients are reduced in bf16'],
    quantizer: ['torchao', 'torchtune QLoRA stores base weights as torchao NF4Tensor; linear_nf4 saves only the weight for backward'],
    kbitUpcast: () => [false, 'torchtune keeps non-quantized weights in bf16'],
    quantizedHead: [false, 'apply_lora_to_output: False leaves the output projection in bf16'],
    dequantBytes: [2, 'NF4Tensor dequantizes straight to bf16'],
    loraDropout: ['off', 'torchtune configs set lora_dropout: 0.0'],
    zero: () => [DEEPSPEED_BUCKETS, 'torchtune does not use DeepSpeed; DeepSpeed defaults apply if asked for'],
  },
  litgpt: {
    summary: 'Lit-GPT/LitGPT finetune scripts: bf16-true, chunked lm_head + bf16 cross-entropy, Fabric FSDP over Blocks',
    gradCheckpointing: (gpus) => (gpus > 1 ? [true, 'the FSDP strategy sets activation_checkpointing_policy={Block}'] : [false, 'single-device runs use no activation checkpointing']),
    loss: ['chunked-lowp', 'lm_head_chunk_size=128 and chunked_cross_entropy in the compute dtype (bf16)'],
    precision: () => ['bf16', 'precision bf16-true: parameters, adapters and optimizer states in bf16'],
    adapterBytes: () => [2, 'bf16-true: LoRA adapters are bf16'],
    optimizer: (method) => (method === 'qlora' ? ['paged-adamw', 'with bitsandbytes quantization the script uses bnb.optim.PagedAdamW'] : ['adamw', 'torch.optim.AdamW over the trainable parameters']),
    wrap: ['layer', 'FSDPStrategy(auto_wrap_policy={Block})'],
    sharedUnits: [true, 'Fabric FSDP (use_orig_params=True) wraps each Block with its LoRA weights: the unit\'s whole gradient is materialised (PyTorch FSDP docs; litgpt#1417)'],
    accumulateUnsynced: [true, 'fabric.no_backward_sync while accumulating: FSDP keeps unsharded gradients between micro-steps'],
    reduceBytes: [2, 'bf16-true: gradients reduced in bf16'],
    quantizer: ['bitsandbytes', 'BitsandbytesPrecision replaces every nn.Linear with bitsandbytes Linear4bit'],
    kbitUpcast: () => [false, 'Lit-GPT keeps non-quantized weights in the compute dtype'],
    quantizedHead: [true, 'BitsandbytesPrecision converts every nn.Linear, lm_head included'],
    dequantBytes: [4, 'Lightning quantizes from an fp16 copy, so bitsandbytes dequantizes to fp16 and casts to bf16 for the matmul'],
    loraDropout: ['per-input', 'lora_dropout 0.05 by default, one dropout on the fused qkv input'],
    zero: () => [DEEPSPEED_BUCKETS, 'Lit-GPT uses FSDP; DeepSpeed defaults apply if asked for'],
  },
  'hf-trainer': {
    summary: 'transformers Trainer + PEFT + Accelerate defaults',
    gradCheckpointing: () => [false, 'TrainingArguments.gradient_checkpointing defaults to False'],
    loss: ['upcast', 'transformers\' causal-LM loss upcasts logits to fp32'],
    precision: (method) => (method === 'full' ? ['mixed', 'bf16=True is autocast over fp32 parameters (fp32 master, states and gradients)'] : ['bf16', 'the frozen base is loaded in bf16 (torch_dtype=bfloat16)']),
    adapterBytes: () => [4, 'PEFT upcasts adapter weights to fp32 (autocast_adapter_dtype=True)'],
    optimizer: () => ['adamw', 'optim="adamw_torch" (fp32 states for fp32 adapters)'],
    wrap: ['layer', 'Accelerate FSDP TRANSFORMER_BASED_WRAP by decoder layer; PEFT\'s fsdp_auto_wrap_policy wraps adapters separately'],
    sharedUnits: [false, 'PEFT\'s fsdp_auto_wrap_policy gives trainable adapters their own FSDP units'],
    accumulateUnsynced: [true, 'Accelerate accumulates under no_sync unless sync_each_batch=True: unsharded gradients between micro-steps'],
    reduceBytes: [4, 'Accelerate\'s FSDP mixed precision reduces gradients in fp32 under bf16 mixed precision'],
    quantizer: ['bitsandbytes', 'BitsAndBytesConfig(load_in_4bit=True): bitsandbytes Linear4bit'],
    kbitUpcast: (gpus) => (gpus > 1 ? [false, 'sharded QLoRA (bnb_4bit_quant_storage set) skips prepare_model_for_kbit_training'] : [true, 'prepare_model_for_kbit_training upcasts every non-quantized parameter to fp32']),
    quantizedHead: [false, 'transformers keeps lm_head out of bitsandbytes quantization'],
    dequantBytes: [2, 'bitsandbytes dequantizes to the dtype the model was loaded in (bf16)'],
    loraDropout: ['per-module', 'LoraConfig(lora_dropout=0.05-0.1) in PEFT examples: one nn.Dropout per adapted module'],
    zero: hfAuto,
  },
  deepspeed: {
    summary: 'DeepSpeed engine defaults (ZeRO buckets, fp32 master weights)',
    gradCheckpointing: () => [false, 'DeepSpeed does not checkpoint activations unless the model asks'],
    loss: ['upcast', 'the usual fp32 cross-entropy'],
    precision: (method) => (method === 'full' ? ['mixed', 'bf16/fp16 enabled: 16-bit parameters with fp32 master weights and optimizer states'] : ['bf16', 'the frozen base in bf16']),
    adapterBytes: () => [4, 'trainable parameters get fp32 master copies'],
    optimizer: () => ['adamw', 'DeepSpeed (Fused)Adam with fp32 states'],
    wrap: ['layer', 'ZeRO-3 gathers parameters module by module (not FSDP units)'],
    sharedUnits: [false, 'ZeRO partitions only trainable parameters\' gradients'],
    accumulateUnsynced: [false, 'ZeRO reduces gradients into their partitions on every micro-step'],
    reduceBytes: [2, 'ZeRO reduces in the 16-bit gradient dtype'],
    quantizer: ['bitsandbytes', 'QLoRA through bitsandbytes'],
    kbitUpcast: () => [false, 'no k-bit preparation'],
    quantizedHead: [false, 'transformers keeps lm_head out of bitsandbytes quantization'],
    dequantBytes: [2, 'dequantized to the 16-bit load dtype'],
    loraDropout: ['per-module', 'PEFT LoRA with dropout'],
    zero: () => [DEEPSPEED_BUCKETS, 'DeepSpeed config-json defaults: reduce/allgather 5e8, stage3 prefetch 5e7, max live 1e9 elements'],
  },
  axolotl: {
    summary: 'axolotl example configs (Trainer underneath)',
    gradCheckpointing: () => [true, 'axolotl examples set gradient_checkpointing: true'],
    loss: ['upcast', 'the Trainer\'s fp32 cross-entropy'],
    precision: (method) => (method === 'full' ? ['bf16', 'axolotl full fine-tuning examples load bf16 weights (bf16: auto)'] : ['bf16', 'bf16 base weights']),
    adapterBytes: () => [4, 'PEFT adapters in fp32'],
    optimizer: (method) => (method === 'qlora' ? ['paged-adamw8bit', 'QLoRA examples use paged 8-bit AdamW'] : ['adamw8bit', 'examples use adamw_bnb_8bit']),
    wrap: ['layer', 'fsdp_transformer_layer_cls_to_wrap: the decoder layer'],
    sharedUnits: [false, 'PEFT wraps adapters separately'],
    accumulateUnsynced: [true, 'Accelerate accumulates under no_sync'],
    reduceBytes: [4, 'Accelerate FSDP mixed precision reduces in fp32'],
    quantizer: ['bitsandbytes', 'load_in_4bit through bitsandbytes'],
    kbitUpcast: (gpus) => (gpus > 1 ? [false, 'FSDP/ZeRO-3 QLoRA skips k-bit preparation'] : [true, 'prepare_model_for_kbit_training upcasts non-quantized weights to fp32']),
    quantizedHead: [false, 'transformers keeps lm_head out of bitsandbytes quantization'],
    dequantBytes: [2, 'dequantized to the bf16 load dtype'],
    loraDropout: ['per-module', 'lora_dropout: 0.05 in the examples (PEFT)'],
    zero: hfAuto,
  },
};

export interface SettingsInputs {
  framework?: string;
  method: Method;
  gpus: number;
  hidden: number;
  gradCheckpointing?: boolean;
  loss?: LossImpl;
  chunkedLoss?: boolean;
  precision?: Precision;
  adapterBytes?: number;
  optimizer?: Optimizer;
  wrap?: WrapUnit;
  sharedUnits?: boolean;
  accumulateUnsynced?: boolean;
  gradAccumulation?: number;
  cpuOffload?: boolean;
  reduceBytes?: number;
  quantizer?: Quantizer;
  kbitUpcast?: boolean;
  quantizedHead?: boolean;
  dequantBytes?: number;
  loraDropout?: LoraDropout;
  zero?: Partial<ZeroBuckets>;
}

function oneOf<T extends string>(flag: string, v: T | undefined, allowed: readonly string[]): T | undefined {
  if (v !== undefined && !allowed.includes(v)) throw new QuantkitError('ERR_USAGE', `${flag} must be one of ${allowed.join(', ')} (got ${v})`);
  return v;
}

/** Resolves every training setting: explicit option, else the framework's default, else quantkit's generic one. */
export function resolveSettings(x: SettingsInputs): TrainingSettings {
  const framework = oneOf<Framework>('--framework', x.framework as Framework | undefined, FRAMEWORKS) ?? null;
  const p = framework ? PRESETS[framework] : null;
  const why: TrainingSettings['why'] = {};
  const pick = <K extends keyof TrainingSettings['why'], V>(key: K, explicit: V | undefined, preset: [V, string] | undefined, generic: [V, string]): V => {
    if (explicit !== undefined) {
      why[key] = 'set explicitly';
      return explicit;
    }
    const [v, reason] = preset ?? generic;
    why[key] = preset ? `${framework}: ${reason}` : reason;
    return v;
  };
  oneOf('--loss', x.loss, LOSSES);
  oneOf('--optimizer', x.optimizer, OPTIMIZERS);
  oneOf('--wrap', x.wrap, WRAP_UNITS);
  const genericPrecision: [Precision, string] = x.method === 'full' ? ['mixed', 'full fine-tuning defaults to mixed precision (16-bit compute, fp32 master copy)'] : ['bf16', 'LoRA defaults to a bf16 base'];
  const precision = pick<'precision', Precision>('precision', x.precision, p?.precision(x.method), genericPrecision);
  const gradAccumulation = x.gradAccumulation ?? 1;
  if (!Number.isSafeInteger(gradAccumulation) || gradAccumulation < 1) throw new QuantkitError('ERR_USAGE', `--grad-accum must be a positive integer (got ${gradAccumulation})`);
  const settings: TrainingSettings = {
    framework,
    gradCheckpointing: pick('gradCheckpointing', x.gradCheckpointing, p?.gradCheckpointing(x.gpus), [false, 'no activation checkpointing unless asked']),
    loss: pick('loss', x.loss ?? (x.chunkedLoss ? 'chunked' : undefined), p?.loss, ['upcast', 'cross-entropy over fp32-upcast logits (transformers, plain PyTorch)']),
    precision,
    adapterBytes: pick('adapterBytes', x.adapterBytes, p?.adapterBytes(precision), precision === 'mixed' || precision === 'fp32' ? [4, 'adapters in fp32 under mixed precision (PEFT)'] : [2, 'adapters in the 16-bit compute dtype']),
    optimizer: pick('optimizer', x.optimizer, p?.optimizer(x.method), ['adamw', 'AdamW']),
    wrap: pick('wrap', x.wrap, p?.wrap, ['layer', 'FSDP units are decoder layers (transformer auto-wrap)']),
    sharedUnits: pick('sharedUnits', x.sharedUnits, p?.sharedUnits, [false, 'adapters in their own FSDP units (or FSDP2 per-parameter sharding)']),
    accumulateUnsynced: pick('accumulateUnsynced', x.accumulateUnsynced, p?.accumulateUnsynced, [false, 'gradients reduced on every micro-step']),
    gradAccumulation,
    cpuOffload: pick('cpuOffload', x.cpuOffload, undefined, [false, 'no CPU offload unless asked']),
    reduceBytes: pick('reduceBytes', x.reduceBytes, p?.reduceBytes, [2, 'gradients reduced in the 16-bit dtype']),
    quantizer: pick('quantizer', x.quantizer, p?.quantizer, ['bitsandbytes', 'QLoRA through bitsandbytes Linear4bit']),
    kbitUpcast: pick('kbitUpcast', x.kbitUpcast, p?.kbitUpcast(x.gpus), [false, 'non-quantized weights stay 16-bit']),
    quantizedHead: pick('quantizedHead', x.quantizedHead, p?.quantizedHead, [false, 'the output head stays 16-bit (transformers)']),
    dequantBytes: pick('dequantBytes', x.dequantBytes, p?.dequantBytes, [2, 'dequantized straight to the 16-bit compute dtype']),
    loraDropout: pick('loraDropout', x.loraDropout, p?.loraDropout, ['off', 'no LoRA dropout']),
    zero: { ...pick('zero', undefined, p?.zero(x.hidden), [DEEPSPEED_BUCKETS, 'DeepSpeed config-json defaults']), ...x.zero },
    why,
  };
  if (x.cpuOffload === undefined) why.cpuOffload = framework ? `${framework}: no CPU offload unless configured` : why.cpuOffload;
  return settings;
}

export function frameworkSummary(f: Framework): string {
  return PRESETS[f].summary;
}
