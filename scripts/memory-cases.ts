/**
 * The published memory measurements (test/fixtures/memory/memory-cases-dev.json, from
 * ../shared/reference) turned into estimate inputs: each case's model fields become a config.json for
 * the architecture formulas, and its method/batch/sequence become estimate options. Used by the tests
 * (tolerance per kind) and by `npm run estimates`, which writes the table in docs/estimates.md.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Checkpoint, type ModelConfig } from '../src/checkpoint.js';
import { type Estimate, type EstimateOptions, estimateModel } from '../src/estimate/estimate.js';
import { type EstimateModel, fromCheckpoint, fromConfig } from '../src/estimate/model.js';

export interface MemoryCase {
  id: string;
  scenario: 'inference' | 'finetune' | 'packed_size';
  method: string;
  measured_value: number;
  measured_unit: 'GiB' | 'GB' | 'MiB';
  model: { name: string; params?: number; largest_layer_params?: number };
  batch: number | null;
  seq_len: unknown;
  source: string;
}

export const CASES: MemoryCase[] = JSON.parse(readFileSync(fileURLToPath(new URL('../test/fixtures/memory/memory-cases-dev.json', import.meta.url)), 'utf8'));

const UNIT: Record<string, number> = { GiB: 2 ** 30, GB: 1e9, MiB: 2 ** 20 };
export const measuredBytes = (c: MemoryCase, unit?: string) => c.measured_value * UNIT[unit ?? c.measured_unit]!;

// Configs written from the cases' own model fields (and the public config.json of each model).
const llama = (hidden: number, layers: number, heads: number, kv: number, inter: number, vocab: number, tied: boolean): ModelConfig => ({
  model_type: 'llama', hidden_size: hidden, num_hidden_layers: layers, num_attention_heads: heads, num_key_value_heads: kv, intermediate_size: inter, vocab_size: vocab, tie_word_embeddings: tied, max_position_embeddings: 131072, torch_dtype: 'bfloat16',
});
export const CONFIGS: Record<string, ModelConfig> = {
  octocoder: { model_type: 'gpt_bigcode', n_embd: 6144, n_layer: 40, n_head: 48, n_inner: 24576, vocab_size: 49152, n_positions: 8192, multi_query: true, torch_dtype: 'bfloat16' },
  'llama-3.2-3b': llama(3072, 28, 24, 8, 8192, 128256, true),
  'llama-3.1-8b': llama(4096, 32, 32, 8, 14336, 128256, false),
  'llama-3.1-70b': llama(8192, 80, 64, 8, 28672, 128256, false),
  'llama-3.1-405b': llama(16384, 126, 128, 8, 53248, 128256, false),
  'bert-base-cased': { model_type: 'bert', hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, vocab_size: 28996, max_position_embeddings: 512, type_vocab_size: 2, torch_dtype: 'float32' },
  'bert-large-cls': { model_type: 'bert', hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, intermediate_size: 4096, vocab_size: 30522, max_position_embeddings: 512, type_vocab_size: 2, num_labels: 2, torch_dtype: 'float32' },
  'phi-3-mini': { model_type: 'phi3', hidden_size: 3072, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, intermediate_size: 8192, vocab_size: 32064, tie_word_embeddings: false, max_position_embeddings: 4096, torch_dtype: 'bfloat16' },
};

/** A model known only by its parameter count (the analytic ZeRO/DeepSpeed rows). */
function paramsOnly(name: string, params: number, largest = 0): EstimateModel {
  const tensors = [{ name: 'rest', dtype: 'BF16' as const, shape: [params - largest], bytes: 2 * (params - largest) }];
  if (largest) tensors.push({ name: 'largest.weight', dtype: 'BF16', shape: [largest, 1], bytes: 2 * largest });
  return fromCheckpoint(Checkpoint.fromShapes(name, null, tensors), 'config formulas', name);
}

export interface CaseSetup {
  config?: string;
  model?: () => EstimateModel;
  options: EstimateOptions;
  /** Relative tolerance (or an absolute one in bytes, whichever is larger). */
  tolerance: number;
  absoluteTolerance?: number;
  /** Why the tolerance is what it is, or what the source leaves out. */
  why: string;
  /** The unit the source really used, where its label is wrong (and why, in `why`). */
  unit?: 'GiB' | 'GB';
}

const GiB = 2 ** 30;
const TT = { batch: 2, seq: 4096, precision: 'bf16', attention: 'flash', peak: 'allocator' } as const; // torchtune recipe: pure bf16, SDPA; 'Peak Memory Active' is the allocator's
const ladder = { chunkedLoss: true, compile: true } as const;

export const SETUPS: Record<string, CaseSetup> = {
  'octocoder-bf16-short': { config: 'octocoder', options: { peak: 'allocator', dtype: 'bf16', seq: 80, attention: 'eager' }, tolerance: 0.05, absoluteTolerance: 0.5 * GiB, why: 'inference: +-5% or 0.5 GiB; ~20-token prompt + 60 new tokens' },
  'octocoder-int8-short': { config: 'octocoder', options: { peak: 'allocator', dtype: 'int8', seq: 80, attention: 'eager' }, tolerance: 0.05, absoluteTolerance: 0.5 * GiB, why: 'inference: +-5% or 0.5 GiB' },
  'octocoder-4bit-short': { config: 'octocoder', options: { peak: 'allocator', dtype: 'fp4', seq: 80, attention: 'eager' }, tolerance: 0.05, absoluteTolerance: 0.5 * GiB, why: 'inference: +-5% or 0.5 GiB; bitsandbytes fp4, blocksize 64, no double quant' },
  'octocoder-bf16-long-eager': { config: 'octocoder', options: { peak: 'allocator', dtype: 'bf16', seq: 5000, attention: 'eager', logitsAllPositions: true }, tolerance: 0.15, why: 'prompt length not stated: ~19.9k characters taken as 5,000 tokens (4 characters per token); +-15%' },
  'octocoder-bf16-long-flash': { config: 'octocoder', options: { peak: 'allocator', dtype: 'bf16', seq: 5000, attention: 'flash', logitsAllPositions: true }, tolerance: 0.15, why: 'prompt length not stated (5,000 tokens assumed); the source\'s own +3.6 GiB over the short run is not explained by KV cache or logits; +-15%' },
  'torchtune-l32-3b-baseline': { config: 'llama-3.2-3b', options: { scenario: 'finetune', ...TT, seq: 512 }, tolerance: 0.2, why: 'unpacked Alpaca rows: real lengths not stated, 512 tokens assumed; +-20%' },
  'torchtune-l32-3b-packed': { config: 'llama-3.2-3b', options: { scenario: 'finetune', ...TT }, tolerance: 0.15, why: 'full fine-tuning, all components modelled; +-15%' },
  'torchtune-l32-3b-compile': { config: 'llama-3.2-3b', options: { scenario: 'finetune', ...TT, compile: true }, tolerance: 0.15, why: 'torch.compile modelled as fusing the MLP activation and product; +-15%' },
  'torchtune-l32-3b-chunkedce': { config: 'llama-3.2-3b', options: { scenario: 'finetune', ...TT, ...ladder }, tolerance: 0.15, why: '+-15%' },
  'torchtune-l32-3b-ac': { config: 'llama-3.2-3b', options: { scenario: 'finetune', ...TT, ...ladder, gradCheckpointing: true }, tolerance: 0.15, why: '+-15%' },
  'torchtune-l32-3b-optinbwd': { config: 'llama-3.2-3b', options: { scenario: 'finetune', ...TT, ...ladder, gradCheckpointing: true, optimizerInBackward: true }, tolerance: 0.15, why: '+-15%' },
  'torchtune-l32-3b-actoffload': { config: 'llama-3.2-3b', options: { scenario: 'finetune', ...TT, ...ladder, gradCheckpointing: true, optimizerInBackward: true, offloadActivations: true }, tolerance: 0.15, why: '+-15%' },
  'torchtune-l32-3b-adamw8bit': { config: 'llama-3.2-3b', options: { scenario: 'finetune', ...TT, ...ladder, gradCheckpointing: true, optimizerInBackward: true, offloadActivations: true, optimizer: 'adamw8bit' }, tolerance: 0.15, why: '+-15%' },
  'torchtune-l32-3b-lora': { config: 'llama-3.2-3b', options: { scenario: 'finetune', ...TT, ...ladder, gradCheckpointing: true, offloadActivations: true, method: 'lora', loraRank: 64, loraTargets: ['q_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, tolerance: 0.15, why: 'LoRA: +-15%; torchtune\'s Llama 3.2 3B recipe: rank 64 on q, v, output and the MLP' },
  'torchtune-l32-3b-qlora': { config: 'llama-3.2-3b', options: { scenario: 'finetune', ...TT, ...ladder, gradCheckpointing: true, offloadActivations: true, method: 'qlora', loraRank: 64, loraTargets: ['q_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, tolerance: 0.15, why: 'QLoRA: +-15%' },
  'accelerate-bert-base-load-fp32': { config: 'bert-base-cased', options: { peak: 'allocator', dtype: 'fp32', batch: 0, seq: 0 }, tolerance: 0.05, why: 'weights only (load, no forward): +-5%' },
  'hf-anatomy-cuda-context': { model: () => paramsOnly('empty', 1), options: { dtype: 'fp32', batch: 0, seq: 0, peak: 'device' }, tolerance: 0.05, absoluteTolerance: 0.5 * GiB, why: 'the CUDA context alone: 0.3-2 GiB by driver; our default 1 GiB; +-0.5 GiB' },
  'hf-anatomy-bert-large-load': { config: 'bert-large-cls', options: { dtype: 'fp32', batch: 0, seq: 0, peak: 'device' }, tolerance: 0.05, absoluteTolerance: 0.5 * GiB, why: 'device peak (nvidia-smi): weights + CUDA context; +-5% or 0.5 GiB' },
  'hf-anatomy-bert-large-train-bs4': { config: 'bert-large-cls', options: { scenario: 'finetune', precision: 'fp32', batch: 4, seq: 512, attention: 'eager', dropout: true, gradientsPersist: true, peak: 'device' }, tolerance: 0.15, why: 'full fp32 fine-tuning, device peak with context (nvidia-smi also sees the allocator\'s cached blocks); PyTorch 1.x kept gradients between steps; +-15%' },
  'hf-anatomy-bert-large-train-bs1-ga4': { config: 'bert-large-cls', options: { scenario: 'finetune', precision: 'fp32', batch: 1, seq: 512, attention: 'eager', dropout: true, gradientsPersist: true, peak: 'device' }, tolerance: 0.15, why: 'as above, batch 1' },
  'phi3-mini-4bit-phone': { config: 'phi-3-mini', options: { scenario: 'packed', bits: 4, format: 'gguf' }, tolerance: 0.25, why: 'secondary source, unit and 4-bit format unstated: 3.82e9 x 4 bits is already 1.91 GB before any scale, so no real 4-bit file is 1.8 GB; predicted: quantkit\'s Q4_0 GGUF; +-25% (order of magnitude only)' },
  'zero-fig1-baseline-7.5b': { model: () => paramsOnly('7.5B', 7.5e9), options: { scenario: 'finetune', batch: 0, peak: 'allocator', gpus: 64, parallel: 'ddp', convention: 'zero-paper' }, tolerance: 0.01, why: 'analytic model states: +-1%' },
  'zero-fig1-pos-7.5b': { model: () => paramsOnly('7.5B', 7.5e9), options: { scenario: 'finetune', batch: 0, peak: 'allocator', gpus: 64, parallel: 'zero1', convention: 'zero-paper' }, tolerance: 0.01, why: 'analytic: +-1%' },
  'zero-fig1-posg-7.5b': { model: () => paramsOnly('7.5B', 7.5e9), options: { scenario: 'finetune', batch: 0, peak: 'allocator', gpus: 64, parallel: 'zero2', convention: 'zero-paper' }, tolerance: 0.01, why: 'analytic: +-1%' },
  'zero-fig1-posgp-7.5b': { model: () => paramsOnly('7.5B', 7.5e9), options: { scenario: 'finetune', batch: 0, peak: 'allocator', gpus: 64, parallel: 'zero3', convention: 'zero-paper' }, tolerance: 0.02, why: 'analytic, printed to one decimal (1.9 GB for 1.875): +-2%' },
  'ds-est-t5-3b-zero2': { model: () => paramsOnly('t5-3b', 2.851e9), options: { scenario: 'finetune', batch: 0, peak: 'allocator', gpus: 8, parallel: 'zero2', convention: 'deepspeed' }, tolerance: 0.01, unit: 'GiB', why: 'DeepSpeed\'s estimator (its accounting: fp32 gradient partition, full fp16 gradients under ZeRO-2); it prints GiB labelled GB (4P + 16P/N = 17.1e9 B = 15.93 GiB); +-1%' },
  'ds-est-t5-3b-zero3': { model: () => paramsOnly('t5-3b', 2.851e9, 32e6), options: { scenario: 'finetune', batch: 0, peak: 'allocator', gpus: 8, parallel: 'zero3', convention: 'deepspeed' }, tolerance: 0.01, why: 'DeepSpeed\'s estimator: +-1%' },
};
for (const [id, ft] of [['f16', 'F16'], ['q8_0', 'Q8_0'], ['q6_k', 'Q6_K'], ['q5_k_m', 'Q5_K_M'], ['q4_k_m', 'Q4_K_M'], ['q4_k_s', 'Q4_K_S'], ['iq4_xs', 'IQ4_XS'], ['q3_k_s', 'Q3_K_S'], ['q2_k', 'Q2_K'], ['iq2_xxs', 'IQ2_XXS']] as const)
  SETUPS[`gguf-llama31-8b-${id}`] = { config: 'llama-3.1-8b', options: { scenario: 'packed', dtype: `gguf:${ft}` }, tolerance: 0.01, why: 'packed size: +-1%' };
SETUPS['gguf-llama31-8b-q4_k_m-disk'] = { config: 'llama-3.1-8b', options: { scenario: 'packed', dtype: 'gguf:Q4_K_M' }, tolerance: 0.01, why: 'packed size (decimal GB, one decimal printed): +-1%' };
const diskTable = 'the disk table is approximate (its fp32 "original size" for 70B is 0.5% off 4 x params) and older than the 8B size table we match to 0.1%; +-3%, misses +-1%';
SETUPS['gguf-llama31-70b-q4_k_m-disk'] = { config: 'llama-3.1-70b', options: { scenario: 'packed', dtype: 'gguf:Q4_K_M' }, tolerance: 0.03, why: diskTable };
SETUPS['gguf-llama31-405b-q4_k_m-disk'] = { config: 'llama-3.1-405b', options: { scenario: 'packed', dtype: 'gguf:Q4_K_M' }, tolerance: 0.03, why: diskTable };

export interface CaseResult {
  c: MemoryCase;
  setup: CaseSetup;
  estimate: Estimate;
  predicted: number;
  measured: number;
  error: number;
  withinTolerance: boolean;
}

/** Model states only (the analytic rows): weights, master copy, gradients, optimizer states. */
const STATE_COMPONENTS = ['weights', 'master_weights_fp32', 'optimizer_states', 'gradients', 'gradients_fp32_partition', 'ddp_gradient_buckets', 'zero3_gathered_layer'];

export async function runCase(c: MemoryCase): Promise<CaseResult> {
  const setup = SETUPS[c.id];
  if (!setup) throw new Error(`no setup for memory case ${c.id}`);
  const model = setup.model ? setup.model() : fromConfig(CONFIGS[setup.config!]!, `${setup.config}/config.json`, setup.config);
  const scenario = setup.options.scenario ?? (c.scenario === 'packed_size' ? 'packed' : c.scenario);
  const estimate = await estimateModel(model, { ...setup.options, scenario });
  let predicted = estimate.peak_bytes;
  if (setup.options.convention === 'zero-paper' || setup.options.convention === 'deepspeed')
    predicted = STATE_COMPONENTS.reduce((s, k) => s + (estimate.components[k] ?? 0), 0);
  const measured = measuredBytes(c, setup.unit);
  const error = (predicted - measured) / measured;
  const withinTolerance = Math.abs(predicted - measured) <= Math.max(setup.tolerance * measured, setup.absoluteTolerance ?? 0);
  return { c, setup, estimate, predicted, measured, error, withinTolerance };
}
