/**
 * Bytes of a model's weights in memory for every weight format an estimate can name:
 *  - plain dtypes (fp32, bf16, fp16): every parameter at that width;
 *  - bitsandbytes as transformers loads it (int8 = LLM.int8, nf4/fp4 = 4-bit, optional double
 *    quantization): nn.Linear weights quantized, embeddings and the output head kept in 16 bits;
 *  - quantkit's own files: the planner's exact per-tensor output bytes (`--bits/--group-size/--format`);
 *  - llama.cpp's file types (`gguf:Q4_K_M` ...): the same planner with `--gguf-type`, so llama-quantize's
 *    per-tensor mix (src/formats/gguf-mixes.ts) prices it byte for byte: a runnable GGUF where llama.cpp
 *    maps the architecture, else the same types in a gguf-raw container.
 */
import { join } from 'node:path';
import { type Checkpoint, type CheckpointTensor, pathExists } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import { RUNNABLE_ARCHITECTURES } from '../formats/gguf-arch.js';
import { type LlamaCppFileType, LLAMA_CPP_FILE_TYPES, isLlamaCppFileType } from '../formats/gguf-mixes.js';
import { type Plan, type QuantizeOptions, planQuantization } from '../plan.js';
import { shapeElements } from '../safetensors/dtypes.js';
import type { EstimateModel } from './model.js';

export type PlainDtype = 'fp32' | 'bf16' | 'fp16';
export type BnbDtype = 'int8' | 'nf4' | 'fp4';
export type WeightDtype = PlainDtype | BnbDtype | 'quantkit' | `gguf:${LlamaCppFileType}`;

export const WEIGHT_DTYPES = ['fp32', 'bf16', 'fp16', 'int8', 'nf4', 'fp4', 'quantkit', ...LLAMA_CPP_FILE_TYPES.map((t) => `gguf:${t}`)];

export interface WeightFormat {
  dtype: WeightDtype;
  /** bitsandbytes 4-bit: quantize the absmax constants too (QLoRA's double quantization). */
  doubleQuant?: boolean;
  /** quantkit's own format when dtype is 'quantkit'. */
  quantkit?: QuantizeOptions;
}

export const PLAIN_BYTES: Record<PlainDtype, number> = { fp32: 4, bf16: 2, fp16: 2 };

export type TensorRole = 'embedding' | 'output' | 'linear' | 'other';

/** What a tensor is, from its Hugging Face name and rank: bitsandbytes and llama.cpp treat each differently. */
export function tensorRole(t: { name: string; shape: readonly number[] }): TensorRole {
  if (t.shape.length < 2) return 'other';
  if (/(^|\.)(lm_head|embed_out|output)\.weight$/.test(t.name)) return 'output';
  if (/(embed_tokens|embed_in|wte|wpe|word_embeddings|position_embeddings|embed_positions|token_type_embeddings)\.weight$/.test(t.name)) return 'embedding';
  return 'linear';
}

export interface WeightBytes {
  /** Bytes of all weights in this format. */
  total: number;
  /** Bytes of the tensors that are quantized (0 for plain dtypes). */
  quantized: number;
  /** Parameters of the largest quantized linear layer (dequantization scratch is sized by it). */
  largestQuantizedParams: number;
  /** The quantkit plan, when the format is quantkit's own: the planner's numbers, byte-exact. */
  plan?: Plan;
}

function bnbBytes(t: CheckpointTensor, dtype: BnbDtype, doubleQuant: boolean): number {
  const n = shapeElements(t.shape)!;
  if (dtype === 'int8') return n + 4 * t.shape[0]!; // int8 weights + one fp32 scale per output row (SCB)
  // 4-bit: two codes per byte, one absmax per 64 weights: fp32, or (double quantization) u8 codes with
  // one fp32 constant per 256 blocks.
  const blocks = Math.ceil(n / 64);
  return Math.ceil(n / 2) + (doubleQuant ? blocks + 4 * Math.ceil(blocks / 256) : 4 * blocks);
}

/** Weight bytes of a model in one format (tied weights once, as runtimes share them). */
export async function weightBytes(model: EstimateModel, format: WeightFormat): Promise<WeightBytes> {
  const tensors = model.checkpoint.tensors;
  const dtype = format.dtype;
  if (dtype === 'fp32' || dtype === 'bf16' || dtype === 'fp16') {
    return { total: model.params * PLAIN_BYTES[dtype], quantized: 0, largestQuantizedParams: 0 };
  }
  if (dtype === 'int8' || dtype === 'nf4' || dtype === 'fp4') {
    let total = 0, quantized = 0, largest = 0;
    for (const t of tensors) {
      const n = shapeElements(t.shape)!;
      if (tensorRole(t) === 'linear') {
        const b = bnbBytes(t, dtype, format.doubleQuant ?? false);
        total += b;
        quantized += b;
        largest = Math.max(largest, n);
      } else {
        total += n * 2; // transformers loads the rest in fp16/bf16
      }
    }
    return { total, quantized, largestQuantizedParams: largest };
  }
  const quantkit = dtype === 'quantkit' ? format.quantkit : dtype.startsWith('gguf:') ? await llamaCppOptions(model.checkpoint, dtype.slice(5)) : undefined;
  if (dtype === 'quantkit' && !quantkit) throw new QuantkitError('ERR_USAGE', "dtype 'quantkit' needs --bits (and optionally --group-size, --format)");
  if (quantkit) {
    const plan = await planQuantization(model.checkpoint, quantkit);
    let largest = 0;
    let total = 0;
    for (const e of plan.entries) {
      total += e.outputBytes;
      if (e.treatment.kind === 'quantize') largest = Math.max(largest, shapeElements(e.tensor.shape)!);
    }
    return { total, quantized: plan.quantizedOutputBytes, largestQuantizedParams: largest, plan };
  }
  throw new QuantkitError('ERR_USAGE', `unknown weight dtype '${dtype}' (choose from ${WEIGHT_DTYPES.join(', ')})`);
}

/**
 * quantize's options for a llama.cpp file type: a runnable GGUF when llama.cpp maps the architecture
 * (and the tokenizer it needs is there, or the model is known by shapes alone), else gguf-raw, whose
 * tensors get the same types under their checkpoint names.
 */
async function llamaCppOptions(ckpt: Checkpoint, ftype: string): Promise<QuantizeOptions> {
  if (!isLlamaCppFileType(ftype)) throw new QuantkitError('ERR_USAGE', `unknown llama.cpp file type '${ftype}' (choose from ${LLAMA_CPP_FILE_TYPES.join(', ')})`);
  const runnable = RUNNABLE_ARCHITECTURES.includes(String(ckpt.config?.model_type)) && (ckpt.shapesOnly || (await pathExists(join(ckpt.dir, 'tokenizer.json'))));
  // llama-quantize's file exactly: its per-tensor rules even for the types quantkit writes pure by default.
  return { bits: 4, format: runnable ? 'gguf' : 'gguf-raw', ggufType: ftype, pure: false };
}
