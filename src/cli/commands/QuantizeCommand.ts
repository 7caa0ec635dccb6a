import type { CommandModule } from 'yargs';
import { REPORT_FILE, quantize } from '../../quantize.js';
import { planResolved, resolveOptions } from '../../plan.js';
import { Checkpoint } from '../../checkpoint.js';
import { jsonReplacer } from '../../quantize.js';
import { planText, reportText } from '../print.js';
import { progressBar } from '../progress-bar.js';
import { type QuantizeArgs, checkThreads, toQuantizeOptions, withQuantizeOptions } from '../quantize-options.js';
import { abortOnSigint } from '../signals.js';

interface Args extends QuantizeArgs {
  output?: string;
  force: boolean;
  'dry-run': boolean;
  'max-rel-rmse'?: number;
  json: boolean;
  quiet: boolean;
}

export const QuantizeCommand: CommandModule<object, Args> = {
  command: 'quantize <model>',
  describe: 'quantize a checkpoint, write packed files, verify them and write quantization-report.json',
  builder: (y) =>
    withQuantizeOptions(y)
      .option('output', { alias: 'o', type: 'string', describe: 'output directory (default: ./<model>-int<bits>-g<group>-<mode>-<format>)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing output directory' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan with predicted sizes; write nothing' })
      .option('max-rel-rmse', { type: 'number', describe: 'fail (exit 5) if any quantized tensor exceeds this relative RMSE' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing but errors (and --json)' }) as never,
  handler: async (args) => {
    const options = toQuantizeOptions(args);
    if (args['dry-run']) {
      const ckpt = await Checkpoint.open(args.model);
      try {
        const plan = await planResolved(ckpt, resolveOptions(options));
        process.stdout.write(args.json ? JSON.stringify(planJson(plan), null, 2) + '\n' : planText(plan) + '\n');
      } finally {
        await ckpt.close();
      }
      return;
    }
    const bar = args.quiet || args.json ? { update() {}, done() {} } : progressBar();
    const { signal, dispose } = abortOnSigint();
    try {
      const result = await quantize(args.model, {
        ...options,
        ...(args.output !== undefined ? { output: args.output } : {}),
        force: args.force,
        ...(checkThreads(args.threads) !== undefined ? { threads: args.threads } : {}),
        ...(args['max-rel-rmse'] !== undefined ? { maxRelRmse: args['max-rel-rmse'] } : {}),
        onProgress: (p) => bar.update(p),
        signal,
      });
      bar.done();
      if (args.json) process.stdout.write(JSON.stringify(result.report, jsonReplacer, 2) + '\n');
      else if (!args.quiet) process.stdout.write(`${reportText(result.report)}\n  report: ${result.output}/${REPORT_FILE}\n`);
    } finally {
      bar.done();
      dispose();
    }
  },
};

export function planJson(plan: Awaited<ReturnType<typeof planResolved>>) {
  return {
    model: plan.model,
    format: plan.format,
    options: { ...plan.options, bitsFor: plan.options.bitsFor.map((r) => `${r.glob}=${r.bits}`) },
    tensors: plan.entries.map((e) => ({
      name: e.tensor.name,
      shape: e.tensor.shape,
      dtype: e.tensor.dtype,
      treatment: e.treatment.kind === 'quantize' ? 'quantized' : 'kept',
      format: e.treatment.kind === 'quantize' ? e.treatment.label : e.treatment.outDtype,
      bytes: e.outputBytes,
      ...(e.treatment.kind === 'keep' ? { reason: e.treatment.reason } : e.treatment.note ? { note: e.treatment.note } : {}),
    })),
    files: plan.files.map((f) => ({ name: f.name, bytes: f.bytes, kind: f.kind })),
    sourceBytes: plan.sourceBytes,
    outputBytes: plan.outputBytes,
    quantizedParams: plan.quantizedParams,
    bitsPerQuantizedWeight: plan.bitsPerQuantizedWeight,
  };
}
