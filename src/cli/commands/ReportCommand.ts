import type { CommandModule } from 'yargs';
import { QuantkitError } from '../../errors.js';
import { type FormatName, type GroupSize, QUANT_METHODS, type QuantMethod, calibrates } from '../../plan.js';
import type { SweepMode } from '../../report/sweep.js';
import { type CalibrationArgs, GLOB_HELP, calibrationOptions, checkThreads, withCalibrationOptions } from '../quantize-options.js';
import { abortOnSigint } from '../signals.js';

interface Args extends CalibrationArgs {
  model: string;
  bits: string;
  'group-size': string;
  mode: string;
  method: string;
  format: string;
  eval?: string;
  'max-tokens': number;
  weightsOnly?: boolean;
  keep?: string[];
  'bits-for'?: string[];
  output?: string;
  force: boolean;
  threads?: number;
  json: boolean;
}

/** "4,8" -> the listed values, each checked against `allowed`. */
function list<T extends string | number>(flag: string, value: string, parse: (s: string) => T | undefined): T[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  return items.map((s) => {
    const v = parse(s);
    if (v === undefined) throw new QuantkitError('ERR_USAGE', `--${flag}: '${s}' is not a valid value`);
    return v;
  });
}

export const ReportCommand: CommandModule<object, Args> = {
  command: 'report <model>',
  describe: 'sweep bits / group size / mode / method / format and write report.json, report.md and report.html (weight error, perplexity, KL, sizes, predicted memory)',
  builder: (y) =>
    withCalibrationOptions(y)
      .positional('model', { type: 'string', demandOption: true, describe: 'model directory, or hub id org/name[@revision] (pulled into the cache first); perplexity and KL need a Llama-family model' })
      .option('bits', { type: 'string', default: '4,8', describe: 'comma-separated: 4, 8' })
      .option('group-size', { type: 'string', default: '32,128', describe: "comma-separated group sizes (or 'row'); GGUF variants take 32 only" })
      .option('mode', { type: 'string', default: 'sym,asym,default', describe: 'comma-separated: sym, asym (quantize --sym / --asym), default (neither flag: auto\'s per-tensor zero points in packed safetensors; skipped where it plans the same as sym)' })
      .option('method', { type: 'string', default: QUANT_METHODS.join(','), describe: `comma-separated: ${QUANT_METHODS.join(', ')}` })
      .option('format', { type: 'string', default: 'safetensors,gguf,onnx', describe: 'comma-separated: safetensors, gguf, gguf-raw, onnx (ONNX variants are also run by ONNX Runtime)' })
      .option('eval', { type: 'string', describe: 'evaluation text for perplexity, documents separated by <|endoftext|> lines (default: the bundled TinyStories excerpt)' })
      .option('max-tokens', { type: 'number', default: 512, describe: 'tokens per document, BOS included' })
      .option('weights-only', { type: 'boolean', default: false, describe: 'skip perplexity/KL (weight error, sizes and memory only)' })
      .option('keep', { type: 'string', array: true, requiresArg: true, describe: `keep tensors matching GLOB unquantized in every variant; repeatable (${GLOB_HELP.split(';')[0]})` })
      .option('bits-for', { type: 'string', array: true, requiresArg: true, describe: 'GLOB=BITS rule for every variant; repeatable, first match wins' })
      .option('output', { alias: 'o', type: 'string', describe: 'output directory (default: <model>-report in the current directory)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing output directory' })
      .option('threads', { type: 'number', describe: 'kernel threads, 1 to 256 (default: the number of CPUs)' })
      .option('json', { type: 'boolean', default: false, describe: 'print report.json on stdout' })
      .group(['bits', 'group-size', 'mode', 'method', 'format', 'keep', 'bits-for'], 'Variants (every valid combination):')
      .group(['calibration-samples', 'calibration-length', 'seed', 'damp'], 'GPTQ calibration (--method gptq, iq4nl-gptq):')
      .group(['eval', 'max-tokens', 'weights-only'], 'Evaluation:')
      .example('quantkit report models/stories260k --bits 4 --method rtn,iq4nl --format gguf', 'perplexity, KL and sizes of two variants')
      .example('quantkit report models/stories260k --weights-only -o stories-report', 'weight error, sizes and memory only') as never,
  handler: async (args) => {
    const threads = checkThreads(args.threads);
    const methods = list<QuantMethod>('method', args.method, (s) => ((QUANT_METHODS as string[]).includes(s) ? (s as QuantMethod) : undefined));
    const calibration = calibrationOptions(args, methods.some(calibrates));
    const { signal, dispose } = abortOnSigint();
    // Loaded here, not with the CLI: the report pulls in the evaluation code that other commands never use.
    const { report } = await import('../../report/index.js');
    const r = await report(args.model, {
      bits: list('bits', args.bits, (s) => (s === '4' || s === '8' ? (Number(s) as 4 | 8) : undefined)),
      groupSizes: list<GroupSize>('group-size', args['group-size'], (s) => (s === 'row' ? 'row' : /^\d+$/.test(s) && Number(s) > 0 ? Number(s) : undefined)),
      modes: list<SweepMode>('mode', args.mode, (s) => (s === 'sym' || s === 'asym' || s === 'default' ? s : undefined)),
      methods,
      ...calibration,
      formats: list<FormatName>('format', args.format, (s) => (['safetensors', 'gguf', 'gguf-raw', 'onnx'].includes(s) ? (s as FormatName) : undefined)),
      ...(args.eval !== undefined ? { evalFile: args.eval } : {}),
      maxTokens: args['max-tokens'],
      weightsOnly: args.weightsOnly ?? false,
      ...(args.keep ? { keep: args.keep } : {}),
      ...(args['bits-for'] ? { bitsFor: args['bits-for'] } : {}),
      ...(args.output !== undefined ? { output: args.output } : {}),
      force: args.force,
      ...(threads !== undefined ? { threads } : {}),
      signal,
      onProgress: args.json ? undefined : (m) => process.stderr.write(`${m}\n`),
    }).finally(dispose);
    if (args.json) {
      process.stdout.write(JSON.stringify(r.report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
      return;
    }
    const best = r.report.variants.filter((v) => v.pareto.perplexity || (!r.report.eval && v.pareto.rel_rmse));
    process.stdout.write(`wrote ${r.output}/report.{json,md,html}: ${r.report.variants.length} variants (${r.report.skipped.length} combinations not valid)\n`);
    if (r.report.eval) process.stdout.write(`original perplexity ${r.report.eval.original.perplexity.toFixed(4)} (${r.report.eval.tokens} tokens)\n`);
    for (const v of best)
      process.stdout.write(`  Pareto: ${v.label.padEnd(36)} ${v.bits_per_weight.toFixed(3)} bits/weight  rel-RMSE ${v.weight_error.rel_rmse.toFixed(4)}${v.model ? `  PPL ${v.model.perplexity.toFixed(4)}  KL ${v.model.kl_mean.toFixed(4)}` : ''}\n`);
  },
};
