import type { CommandModule } from 'yargs';
import { ONNX_DTYPES, type OnnxDtype } from '../../formats/onnx/dtypes.js';
import { QuantkitError } from '../../errors.js';
import { type Estimate, type EstimateOptions, DEVICES, FRAMEWORKS, estimate } from '../../estimate/index.js';
import { LOSSES, OPTIMIZERS, WRAP_UNITS } from '../../estimate/frameworks.js';
import { WEIGHT_DTYPES, type WeightDtype } from '../../estimate/weights.js';
import { DEFAULT_METHOD } from '../../options.js';
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
  framework?: string;
  precision?: string;
  optimizer?: string;
  'lora-rank': number;
  'lora-targets'?: string[];
  'grad-checkpointing'?: boolean;
  'chunked-loss'?: boolean;
  loss?: string;
  'grad-accum'?: number;
  'cpu-offload'?: boolean;
  wrap?: string;
  'reduce-dtype'?: string;
  'kbit-upcast'?: boolean;
  compile: boolean;
  'optimizer-in-backward': boolean;
  'offload-activations': boolean;
  dropout: boolean;
  gpus: number;
  parallel?: string;
  device?: string;
  explain: boolean;
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
      .positional('target', { type: 'string', demandOption: true, describe: 'model directory (exact, from the safetensors headers), config.json or a folder holding only config.json (architecture formulas), or hub id org/name[@revision] (remote headers, no weights downloaded)' })
      .option('scenario', { type: 'string', choices: ['inference', 'finetune', 'packed'], default: 'inference', describe: 'what to predict: inference memory, fine-tuning memory (per GPU) or the packed file size' })
      .option('dtype', { type: 'string', choices: WEIGHT_DTYPES, describe: 'weight format (default bf16): fp32/bf16/fp16, bitsandbytes int8/nf4/fp4, or gguf:<type> for a llama.cpp file' })
      .option('bits', { type: 'number', choices: [4, 8], describe: "quantkit's own format instead of --dtype (exact sizes from the planner, as quantize --bits)" })
      .option('group-size', { type: 'string', default: '32', describe: 'with --bits: weights per scale, or row' })
      .option('format', { type: 'string', choices: ['safetensors', 'gguf', 'gguf-raw', 'onnx'], default: 'safetensors', describe: 'with --bits: output format' })
      .option('onnx-dtype', { type: 'string', choices: ONNX_DTYPES, describe: 'with --bits and --format onnx: transformers.js dtype (as quantize)' })
      .option('asym', { type: 'boolean', describe: 'with --bits: asymmetric' })
      .option('gguf-type', { type: 'string', choices: GGUF_FILE_TYPES, describe: 'with --bits and --format gguf (as quantize)' })
      .option('keep', { type: 'string', array: true, requiresArg: true, describe: 'with --bits: GLOB of tensors kept unquantized, repeatable (as quantize)' })
      .option('bits-for', { type: 'string', array: true, requiresArg: true, describe: 'with --bits: GLOB=BITS rule, repeatable (as quantize)' })
      .option('scale-dtype', { type: 'string', choices: ['F16', 'BF16', 'F32'], describe: 'with --bits (as quantize)' })
      .option('max-shard-size', { type: 'string', describe: 'with --bits: shard size, 500MB, 2GB, 1GiB (as quantize)' })
      .option('double-quant', { type: 'boolean', describe: 'nf4/fp4: quantize the absmax constants too' })
      .option('batch', { type: 'number', default: 1, describe: 'sequences per step' })
      .option('seq', { type: 'number', describe: "tokens per sequence (default 2048, or the model's context if shorter)" })
      .option('kv-bytes', { type: 'number', describe: 'bytes per KV-cache element: 2 (fp16/bf16, default) or 1 (8-bit cache)' })
      .option('attention', { type: 'string', choices: ['flash', 'eager'], default: 'flash', describe: 'attention implementation (eager keeps the score matrices)' })
      .option('method', { type: 'string', choices: ['full', 'lora', 'qlora'], default: 'full', describe: '--scenario finetune: what is trained' })
      .option('framework', { type: 'string', choices: FRAMEWORKS, describe: 'take this framework\'s defaults for every training setting not given (see --explain)' })
      .option('precision', { type: 'string', choices: ['mixed', 'bf16', 'fp16', 'fp32'], describe: 'training precision (full: mixed, LoRA: bf16, or the framework\'s)' })
      .option('optimizer', { type: 'string', choices: OPTIMIZERS, describe: 'optimizer (default adamw, or the framework\'s); paged-* live outside PyTorch\'s allocator' })
      .option('lora-rank', { type: 'number', default: 8, describe: 'LoRA rank' })
      .option('lora-targets', { type: 'string', array: true, requiresArg: true, describe: 'LoRA target module name, repeatable (--lora-targets q_proj --lora-targets v_proj, the default), or all-linear' })
      .option('grad-checkpointing', { type: 'boolean', describe: 'activation checkpointing: recompute activations in the backward pass (default off, or the framework\'s)' })
      .option('chunked-loss', { type: 'boolean', describe: 'same as --loss chunked' })
      .option('loss', { type: 'string', choices: LOSSES, describe: 'upcast (fp32 cross-entropy), chunked (torchtune), chunked-lowp (Lit-GPT)' })
      .option('grad-accum', { type: 'number', describe: 'gradient accumulation micro-steps (default 1)' })
      .option('cpu-offload', { type: 'boolean', describe: 'FSDP/ZeRO CPU offload of sharded parameters, gradients and optimizer states' })
      .option('wrap', { type: 'string', choices: WRAP_UNITS, describe: 'FSDP wrapping unit (default layer)' })
      .option('reduce-dtype', { type: 'string', choices: ['bf16', 'fp32'], describe: 'dtype FSDP reduce-scatters gradients in' })
      .option('kbit-upcast', { type: 'boolean', describe: 'QLoRA: prepare_model_for_kbit_training upcasts non-quantized weights to fp32 (hf-trainer/axolotl default on one GPU)' })
      .option('compile', { type: 'boolean', default: false, describe: 'torch.compile (fused MLP and loss)' })
      .option('optimizer-in-backward', { type: 'boolean', default: false, describe: 'optimizer step fused into the backward pass (no full gradient buffer)' })
      .option('offload-activations', { type: 'boolean', default: false, describe: 'activations kept in host memory' })
      .option('dropout', { type: 'boolean', default: false, describe: 'the model trains with dropout' })
      .option('gpus', { type: 'number', default: 1, describe: 'number of GPUs' })
      .option('parallel', { type: 'string', describe: 'with --gpus: ddp, zero1, zero2, zero3, fsdp, fsdp-grad-op, hsdpN, tpN, ppN, dpN, combined with + (tp2+fsdp)' })
      .option('device', { type: 'string', alias: 'gpu', describe: `check the fit on a device and name the cheapest configuration that fits: ${DEVICES.filter((d) => !/^(M|phone)-/.test(d.name)).map((d) => d.name).join(', ')}, M-<GB>, phone-<GB>` })
      .option('explain', { type: 'boolean', default: false, describe: 'print every term per GPU with the behaviour it models' })
      .option('runtime', { type: 'string', choices: ['pytorch', 'llama.cpp', 'onnxruntime'], default: 'pytorch', describe: 'inference runtime: PyTorch on a GPU, the buffers llama.cpp allocates for a GGUF file, or onnxruntime-node for an ONNX export' })
      .option('ubatch', { type: 'number', describe: 'llama.cpp micro-batch (default 512)' })
      .option('peak', { type: 'string', choices: ['allocator', 'device'], default: 'device', describe: 'allocator (torch.cuda.max_memory_allocated) or device (as nvidia-smi shows: + CUDA context)' })
      .option('cuda-context', { type: 'string', describe: 'CUDA context size for the device peak: 1GiB (default), 500MB, ...' })
      .option('revision', { type: 'string', describe: 'hub revision (or org/name@revision)' })
      .option('token', { type: 'string', describe: 'hub access token (default: HF_TOKEN, then the huggingface-cli login token)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the estimate as JSON on stdout' })
      .group(['dtype', 'bits', 'group-size', 'format', 'onnx-dtype', 'asym', 'gguf-type', 'keep', 'bits-for', 'scale-dtype', 'max-shard-size', 'double-quant'], 'Weights:')
      .group(['batch', 'seq', 'kv-bytes', 'attention', 'runtime', 'ubatch'], 'Workload:')
      .group(['method', 'framework', 'precision', 'optimizer', 'lora-rank', 'lora-targets', 'grad-checkpointing', 'chunked-loss', 'loss', 'grad-accum', 'cpu-offload', 'wrap', 'reduce-dtype', 'kbit-upcast', 'compile', 'optimizer-in-backward', 'offload-activations', 'dropout'], 'Fine-tuning (--scenario finetune):')
      .group(['gpus', 'parallel', 'device', 'explain', 'peak', 'cuda-context'], 'Devices:')
      .group(['revision', 'token'], 'Hugging Face Hub:')
      .example('quantkit estimate models/stories260k --scenario packed --bits 4 --format gguf', 'the exact bytes quantize would write')
      .example('quantkit estimate ./llama-config --dtype nf4 --seq 8192 --device RTX4090', 'a folder holding only config.json: inference, does it fit?')
      .example('quantkit estimate mistralai/Mistral-7B-v0.1 --scenario finetune --method qlora --grad-checkpointing --device T4', 'from the hub, headers only') as never,
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
      ...(args.asym ? { mode: 'asym' as const } : {}), // unset: the planner's default, as quantize (auto's zero points where they pay)
      format: args.format as 'safetensors' | 'gguf' | 'gguf-raw' | 'onnx',
      ggufType: args['gguf-type'] as GgufFileType | undefined,
      onnxDtype: args['onnx-dtype'] as OnnxDtype | undefined,
      // The plan `quantize --bits` makes with its default method (auto quantizes the embedding and head
      // too, with F16 scales), so that "the exact bytes quantize would write" holds for the CLI.
      ...(args.bits !== undefined ? { quantMethod: DEFAULT_METHOD } : {}),
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
      framework: args.framework as EstimateOptions['framework'],
      precision: args.precision as EstimateOptions['precision'],
      optimizer: args.optimizer as EstimateOptions['optimizer'],
      loraRank: args['lora-rank'],
      loraTargets: args['lora-targets'],
      gradCheckpointing: args['grad-checkpointing'],
      chunkedLoss: args['chunked-loss'],
      loss: args.loss as EstimateOptions['loss'],
      gradAccumulation: args['grad-accum'],
      cpuOffload: args['cpu-offload'],
      wrap: args.wrap as EstimateOptions['wrap'],
      reduceBytes: args['reduce-dtype'] === undefined ? undefined : args['reduce-dtype'] === 'fp32' ? 4 : 2,
      kbitUpcast: args['kbit-upcast'],
      compile: args.compile,
      optimizerInBackward: args['optimizer-in-backward'],
      offloadActivations: args['offload-activations'],
      dropout: args.dropout,
      gpus: args.gpus,
      parallel: args.parallel,
      device: args.device,
      peak: args.peak as 'allocator' | 'device',
      runtime: args.runtime as 'pytorch' | 'llama.cpp' | 'onnxruntime',
      ubatch: args.ubatch,
      cudaContextBytes,
    };
    const est = await estimate(args.target, o, { revision: args.revision, token: args.token });
    process.stdout.write(args.json ? JSON.stringify(est, null, 2) + '\n' : estimateText(est, args.explain) + '\n');
  },
};

export function estimateText(e: Estimate, explain = false): string {
  const out: string[] = [];
  const a = e.assumptions;
  out.push(`${e.model}: ${e.params.toLocaleString('en-US')} parameters (${e.params_source})`);
  if (e.params_source === 'config formulas')
    out.push("from config.json alone (no weights read): the parameter count and every tensor's shape come from the architecture's formulas, not from safetensors headers; the sizes below are priced on them (kept tensors in config.json's torch_dtype, F32 if it names none)");
  out.push(`scenario: ${e.scenario}; ${Object.entries(a).filter(([k, v]) => v !== undefined && k !== 'scenario' && k !== 'peak_rule' && k !== 'note').map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ')}`);
  if (explain && e.settings) {
    out.push('settings:');
    for (const [k, { value, why }] of Object.entries(e.settings)) out.push(`  ${k} = ${typeof value === 'object' ? JSON.stringify(value) : String(value)}: ${why}`);
  }
  const width = Math.max(...e.terms.map((t) => t.name.length), 10);
  for (const t of e.terms) {
    const phase = t.phase ? ` [${t.phase}${t.outside_allocator ? ', outside the allocator' : ''}]` : '';
    out.push(`  ${t.name.padEnd(width)}  ${formatBytes(t.bytes)}${explain ? `${phase}  ${t.why}` : ''}`);
  }
  const host = String(e.assumptions.runtime ?? '').startsWith('onnxruntime') ? 'ONNX Runtime in all (host memory)' : 'llama.cpp buffers in all (host memory)';
  const label = e.peak_kind === 'file' ? 'total file size' : e.peak_kind === 'host' ? host : `peak per GPU (${e.peak_kind})`;
  out.push(`  ${label}: ${formatBytes(e.peak_bytes)}`);
  if (a.peak_rule) out.push(`  peak = ${String(a.peak_rule)}`);
  if (a.note) out.push(`  ${String(a.note)}`);
  const f = e.fits;
  if (f) {
    const verdict = (fits: boolean, headroom: number) => `${formatBytes(Math.abs(headroom))} ${fits ? 'to spare' : 'short'}`;
    out.push(`${f.fits ? 'fits on' : 'does NOT fit on'} ${f.device} (${f.note}; budget ${formatBytes(f.capacity_bytes)}): ${verdict(f.fits, f.headroom_bytes)}`);
    if (f.raised) out.push(`  ${f.raised.how}: budget ${formatBytes(f.raised.capacity_bytes)}, ${f.raised.fits ? 'fits' : 'does NOT fit'}: ${verdict(f.raised.fits, f.raised.headroom_bytes)}`);
    if (explain && f.source) out.push(`  budget source: ${f.source}`);
    if (e.cheapest_fit) out.push(`cheapest configuration that fits: ${e.cheapest_fit.description} (${formatBytes(e.cheapest_fit.peak_bytes)})`);
    else if (e.cheapest_fit === null) out.push('no configuration among those tried fits this device');
  }
  return out.join('\n');
}
