import type { CommandModule } from 'yargs';
import { ONNX_DTYPES, type OnnxDtype } from '../../formats/onnx/dtypes.js';
import { QuantkitError } from '../../errors.js';
import { type Estimate, type EstimateOptions, estimate } from '../../estimate/index.js';
import { WEIGHT_DTYPES, type WeightDtype } from '../../estimate/weights.js';
import { GGUF_FILE_TYPES, type GgufFileType, type GroupSize } from '../../plan.js';
import { formatBytes, parseSize } from '../../units.js';

interface EstimateArgs {
  target: string;
  scenario: string;
  dtype?: string;
  bits?: number;
  'group-size': string;
  format: string;
  asym?: boolean;
  'gguf-type'?: string;
  'onnx-dtype'?: string;
  keep?: string[];
  'bits-for'?: string[];
  'scale-dtype'?: string;
  'max-shard-size'?: string;
  'double-quant'?: boolean;
  batch: number;
  seq?: number;
  'kv-bytes'?: number;
  attention: string;
  method: string;
  precision?: string;
  optimizer: string;
  'lora-rank': number;
  'lora-targets'?: string[];
  'grad-checkpointing': boolean;
  'chunked-loss': boolean;
  compile: boolean;
  'optimizer-in-backward': boolean;
  'offload-activations': boolean;
  dropout: boolean;
  gpus: number;
  parallel?: string;
  gpu?: string;
  peak: string;
  runtime: string;
  ubatch?: number;
  'cuda-context'?: string;
  revision?: string;
  token?: string;
  json: boolean;
}

export const EstimateCommand: CommandModule<object, EstimateArgs> = {
  command: 'estimate <target>',
  describe: 'predict packed size, inference memory or fine-tuning memory (per GPU) before running anything',
  builder: (y) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'model directory, config.json, or hub id org/name[@revision]' })
      .option('scenario', { type: 'string', choices: ['inference', 'finetune', 'packed'], default: 'inference' })
      .option('dtype', { type: 'string', choices: WEIGHT_DTYPES, describe: 'weight format (default bf16); gguf:<type> predicts llama.cpp files' })
      .option('bits', { type: 'number', choices: [4, 8], describe: "quantkit's own format (as `quantize --bits`)" })
      .option('group-size', { type: 'string', default: '32', describe: 'with --bits' })
      .option('format', { type: 'string', choices: ['safetensors', 'gguf', 'gguf-raw', 'onnx'], default: 'safetensors', describe: 'with --bits' })
      .option('onnx-dtype', { type: 'string', choices: ONNX_DTYPES, describe: 'with --bits and --format onnx (as quantize)' })
      .option('asym', { type: 'boolean', describe: 'with --bits: asymmetric' })
      .option('gguf-type', { type: 'string', choices: GGUF_FILE_TYPES, describe: 'with --bits and --format gguf (as quantize)' })
      .option('keep', { type: 'string', array: true, describe: 'with --bits: glob of tensors kept unquantized (as quantize)' })
      .option('bits-for', { type: 'string', array: true, describe: 'with --bits: GLOB=BITS rule (as quantize)' })
      .option('scale-dtype', { type: 'string', choices: ['F16', 'BF16', 'F32'], describe: 'with --bits (as quantize)' })
      .option('max-shard-size', { type: 'string', describe: 'with --bits (as quantize)' })
      .option('double-quant', { type: 'boolean', describe: 'nf4/fp4: quantize the absmax constants too' })
      .option('batch', { type: 'number', default: 1 })
      .option('seq', { type: 'number', describe: 'tokens per sequence (default 2048)' })
      .option('kv-bytes', { type: 'number', describe: 'bytes per KV-cache element (default 2)' })
      .option('attention', { type: 'string', choices: ['flash', 'eager'], default: 'flash' })
      .option('method', { type: 'string', choices: ['full', 'lora', 'qlora'], default: 'full' })
      .option('precision', { type: 'string', choices: ['mixed', 'bf16', 'fp16', 'fp32'], describe: 'training precision (full: mixed, LoRA: bf16)' })
      .option('optimizer', { type: 'string', choices: ['adamw', 'adamw8bit', 'sgd', 'sgd-momentum'], default: 'adamw' })
      .option('lora-rank', { type: 'number', default: 8 })
      .option('lora-targets', { type: 'string', array: true, describe: "module names, or all-linear (default q_proj v_proj)" })
      .option('grad-checkpointing', { type: 'boolean', default: false })
      .option('chunked-loss', { type: 'boolean', default: false, describe: 'chunked cross-entropy' })
      .option('compile', { type: 'boolean', default: false, describe: 'torch.compile (fused MLP and loss)' })
      .option('optimizer-in-backward', { type: 'boolean', default: false })
      .option('offload-activations', { type: 'boolean', default: false })
      .option('dropout', { type: 'boolean', default: false, describe: 'the model trains with dropout' })
      .option('gpus', { type: 'number', default: 1 })
      .option('parallel', { type: 'string', describe: 'ddp, zero1, zero2, zero3, fsdp, tpN, ppN, dpN, combined with + (tp2+dp4)' })
      .option('gpu', { type: 'string', describe: 'check the fit on a device (RTX4090, A100-80, H100-80, M-32, phone-8, ...)' })
      .option('runtime', { type: 'string', choices: ['pytorch', 'llama.cpp', 'onnxruntime'], default: 'pytorch', describe: 'inference runtime: PyTorch on a GPU, llama.cpp buffers for a GGUF file, or onnxruntime-node for an ONNX export' })
      .option('ubatch', { type: 'number', describe: 'llama.cpp micro-batch (default 512)' })
      .option('peak', { type: 'string', choices: ['allocator', 'device'], default: 'device', describe: "allocator (torch.cuda.max_memory_allocated) or device (nvidia-smi: + CUDA context)" })
      .option('cuda-context', { type: 'string', describe: 'CUDA context size for the device peak (default 1GiB)' })
      .option('revision', { type: 'string', describe: 'hub revision (or org/name@revision)' })
      .option('token', { type: 'string', describe: 'hub token (default: HF_TOKEN)' })
      .option('json', { type: 'boolean', default: false }) as never,
  handler: async (args) => {
    const groupSize: GroupSize = args['group-size'] === 'row' ? 'row' : Number(args['group-size']);
    const size = (flag: string, v: string | undefined) => {
      try {
        return v === undefined ? undefined : parseSize(v);
      } catch (e) {
        throw new QuantkitError('ERR_USAGE', `${flag}: ${(e as Error).message}`);
      }
    };
    const cudaContextBytes = size('--cuda-context', args['cuda-context']);
    const o: EstimateOptions = {
      scenario: args.scenario as EstimateOptions['scenario'],
      dtype: args.dtype as WeightDtype | undefined,
      bits: args.bits as 4 | 8 | undefined,
      groupSize,
      mode: args.asym ? 'asym' : 'sym',
      format: args.format as 'safetensors' | 'gguf' | 'gguf-raw' | 'onnx',
      ggufType: args['gguf-type'] as GgufFileType | undefined,
      onnxDtype: args['onnx-dtype'] as OnnxDtype | undefined,
      keep: args.keep,
      bitsFor: args['bits-for'],
      scaleDtype: args['scale-dtype'] as EstimateOptions['scaleDtype'],
      maxShardSize: size('--max-shard-size', args['max-shard-size']),
      doubleQuant: args['double-quant'],
      batch: args.batch,
      seq: args.seq,
      kvBytes: args['kv-bytes'],
      attention: args.attention as 'flash' | 'eager',
      method: args.method as 'full' | 'lora' | 'qlora',
      precision: args.precision as EstimateOptions['precision'],
      optimizer: args.optimizer as EstimateOptions['optimizer'],
      loraRank: args['lora-rank'],
      loraTargets: args['lora-targets'],
      gradCheckpointing: args['grad-checkpointing'],
      chunkedLoss: args['chunked-loss'],
      compile: args.compile,
      optimizerInBackward: args['optimizer-in-backward'],
      offloadActivations: args['offload-activations'],
      dropout: args.dropout,
      gpus: args.gpus,
      parallel: args.parallel,
      gpu: args.gpu,
      peak: args.peak as 'allocator' | 'device',
      runtime: args.runtime as 'pytorch' | 'llama.cpp' | 'onnxruntime',
      ubatch: args.ubatch,
      cudaContextBytes,
    };
    const est = await estimate(args.target, o, { revision: args.revision, token: args.token });
    process.stdout.write(args.json ? JSON.stringify(est, null, 2) + '\n' : estimateText(est) + '\n');
  },
};

export function estimateText(e: Estimate): string {
  const out: string[] = [];
  const a = e.assumptions;
  out.push(`${e.model}: ${e.params.toLocaleString('en-US')} parameters (${e.params_source})`);
  out.push(`scenario: ${e.scenario}; ${Object.entries(a).filter(([k]) => k !== 'scenario' && k !== 'peak_rule' && k !== 'note').map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ')}`);
  const width = Math.max(...Object.keys(e.components).map((k) => k.length), 10);
  for (const [k, v] of Object.entries(e.components)) out.push(`  ${k.padEnd(width)}  ${formatBytes(v)}`);
  const host = String(e.assumptions.runtime ?? '').startsWith('onnxruntime') ? 'ONNX Runtime in all (host memory)' : 'llama.cpp buffers in all (host memory)';
  const label = e.peak_kind === 'file' ? 'total file size' : e.peak_kind === 'host' ? host : `peak per GPU (${e.peak_kind})`;
  out.push(`  ${label}: ${formatBytes(e.peak_bytes)}`);
  if (a.peak_rule) out.push(`  peak = ${String(a.peak_rule)}`);
  if (a.note) out.push(`  ${String(a.note)}`);
  if (e.fits) {
    out.push(`${e.fits.fits ? 'fits on' : 'does NOT fit on'} ${e.fits.note}: ${formatBytes(Math.abs(e.fits.headroom_bytes))} ${e.fits.fits ? 'to spare' : 'short'}`);
    if (e.cheapest_fit) out.push(`cheapest configuration that fits: ${e.cheapest_fit.description} (${formatBytes(e.cheapest_fit.peak_bytes)})`);
    else if (e.cheapest_fit === null) out.push('no configuration among those tried fits this device');
  }
  return out.join('\n');
}
