import type { CommandModule } from 'yargs';
import { type Progress, type QuantizationReport, REPORT_FILE, jsonReplacer, localModel, quantize } from '../../quantize.js';
import { isDiffusersPipeline } from '../../checkpoint.js';
import { type PipelineReport, quantizePipeline } from '../../pipeline.js';
import { pipelineReportText, reportText } from '../print.js';
import { progressBar } from '../progress-bar.js';
import { type QuantizeArgs, checkThreads, toQuantizeOptions, withQuantizeOptions } from '../quantize-options.js';
import { printPlan } from './PlanCommand.js';
import { abortOnSigint } from '../signals.js';
import { QuantkitError } from '../../errors.js';

interface Args extends QuantizeArgs {
  output?: string;
  force: boolean;
  'dry-run': boolean;
  'max-rel-rmse'?: number;
  'allow-non-finite': boolean;
  threads?: number;
  verify: 'fast' | 'full';
  json: boolean;
  quiet: boolean;
  eval?: string | false;
}

export const QuantizeCommand: CommandModule<object, Args> = {
  command: 'quantize <model>',
  describe: 'quantize a checkpoint, write packed files, verify them and write quantization-report.json',
  builder: (y) =>
    withQuantizeOptions(y)
      .option('output', { alias: 'o', type: 'string', describe: 'output directory (default, in the current directory: <model>-int<bits>-g<group>-<mode>[-<method>]-<format>, <mode> being sym, asym, or auto where --method auto adds zero points; or <model>-<gguf-type>[-<method>]-gguf)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing output directory' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan with predicted sizes (as quantkit plan); write nothing' })
      .option('max-rel-rmse', { type: 'number', describe: 'fail (exit 5, nothing published) if any quantized tensor exceeds this relative RMSE' })
      .option('allow-non-finite', { type: 'boolean', default: false, describe: 'copy NaN/Inf values of tensors kept unquantized as they are (the report lists them) instead of refusing (exit 3)' })
      .option('threads', { type: 'number', describe: 'kernel threads, 1 to 256 (default: the CPUs this process may use: its affinity mask, capped by a cgroup CPU quota)' })
      .option('verify', { choices: ['fast', 'full'] as const, default: 'fast' as const, describe: "fast: every tensor's error measured before it is written, files hashed as written and re-opened; full: also re-read and dequantize everything from disk against the source (as quantkit verify)" })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing but errors (and --json)' })
      .option('eval', { type: 'string', describe: "evaluation text for the written file's perplexity, printed beside the original's (default: the bundled TinyStories excerpt, as quantkit report; Llama-family models up to 4 M parameters); --no-eval skips it" })
      .group(['output', 'force', 'dry-run', 'max-rel-rmse', 'allow-non-finite', 'threads', 'verify', 'eval', 'json', 'quiet'], 'Run and output:')
      .example('quantkit quantize models/stories260k --bits 4 --keep "*norm*" -o out/w4', 'options before or after the model')
      .example('quantkit quantize --format gguf --gguf-type mobile models/stories260k', 'a GGUF file llama.cpp runs')
      .example('quantkit quantize ./sd-pipeline --bits 8 --keep "vae/*" --keep "*norm*"', 'a diffusers pipeline folder: every component, the VAE kept whole')
      .example('quantkit quantize Qwen/Qwen2-0.5B --format gguf', 'a hub id: pulled into the Hugging Face cache first') as never,
  handler: async (args) => {
    const options = toQuantizeOptions(args);
    if (args['dry-run']) return printPlan(args.model, options, args.json);
    const bar = args.quiet || args.json ? { update() {}, done() {} } : progressBar();
    const { signal, dispose } = abortOnSigint();
    try {
      const run = {
        ...options,
        ...(args.output !== undefined ? { output: args.output } : {}),
        force: args.force,
        ...(checkThreads(args.threads) !== undefined ? { threads: args.threads } : {}),
        ...(args['max-rel-rmse'] !== undefined ? { maxRelRmse: args['max-rel-rmse'] } : {}),
        ...(args['allow-non-finite'] ? { allowNonFinite: true } : {}),
        verify: args.verify,
        ...evalOption(args.eval),
        onProgress: (p: Progress) => bar.update(p),
        signal,
      };
      const model = await localModel(args.model, run);
      const result = (await isDiffusersPipeline(model)) ? await quantizePipeline(model, run) : await quantize(model, run);
      bar.done();
      if (args.json) process.stdout.write(JSON.stringify(result.report, jsonReplacer, 2) + '\n');
      else if (!args.quiet) {
        const text = 'components' in result ? pipelineReportText(result.report, result.components) : reportText(result.report);
        process.stdout.write(`${text}\n${runSummary(result.report)}  report: ${result.output}/${REPORT_FILE}\n`);
      }
    } finally {
      bar.done();
      dispose();
    }
  },
};

/** --eval FILE, --no-eval (yargs gives false), or neither: the CLI measures on the bundled text (the library does not by default). */
function evalOption(e: string | false | undefined): { evalFile: string | boolean } {
  if (e === undefined) return { evalFile: true };
  if (e === '') throw new QuantkitError('ERR_USAGE', '--eval takes a text file (or --no-eval to skip the perplexity)');
  return { evalFile: e };
}

/** Which verification ran and this process's peak resident memory (a pipeline: its components'). */
function runSummary(report: QuantizationReport | PipelineReport): string {
  const modes = 'components' in report ? [...new Set(report.components.map((c) => c.verification))] : [report.verification.mode];
  return `  verification: ${modes.join(', ')}${modes.includes('fast') ? ' (errors measured before writing, files hashed and re-opened; --verify full re-reads everything)' : ''}\n  peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB\n`;
}
