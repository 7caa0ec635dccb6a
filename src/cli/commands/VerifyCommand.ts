import type { CommandModule } from 'yargs';
import { isDiffusersPipeline } from '../../checkpoint.js';
import { verifyPipeline } from '../../pipeline.js';
import { jsonReplacer } from '../../quantize.js';
import { checkMaxRelRmse, verifyOutput } from '../../verify.js';
import { pipelineVerifyText, reportText } from '../print.js';
import { checkThreads } from '../quantize-options.js';
import { abortOnSigint } from '../signals.js';

interface Args {
  output: string;
  against: string;
  json: boolean;
  'max-rel-rmse'?: number;
  threads?: number;
}

export const VerifyCommand: CommandModule<object, Args> = {
  command: 'verify <output>',
  describe: 're-open a quantkit output, dequantize every tensor and compare it with the source checkpoint',
  builder: (y) =>
    y
      .positional('output', { type: 'string', demandOption: true, describe: 'output directory written by quantize (a whole pipeline folder when --against is one)' })
      .option('against', { type: 'string', demandOption: true, requiresArg: true, describe: 'the source: model directory, .safetensors file or diffusers pipeline folder it was made from' })
      .option('max-rel-rmse', { type: 'number', describe: 'fail (exit 5) if any quantized tensor exceeds this relative RMSE' })
      .option('threads', { type: 'number', describe: 'kernel threads, 1 to 256 (default: the CPUs this process may use: its affinity mask, capped by a cgroup CPU quota)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' })
      .example('quantkit verify out/stories-w4 --against models/stories260k --max-rel-rmse 0.1', 'exit 6 if a file differs, 5 if a tensor is worse than 0.1') as never,
  handler: async (args) => {
    const threads = checkThreads(args.threads);
    const { signal, dispose } = abortOnSigint();
    const o = { signal, ...(threads !== undefined ? { threads } : {}) };
    try {
      if (await isDiffusersPipeline(args.against)) {
        const r = await verifyPipeline(args.output, args.against, o);
        process.stdout.write(args.json ? JSON.stringify(r, jsonReplacer, 2) + '\n' : pipelineVerifyText(r) + '\n');
        checkMaxRelRmse(r.components.flatMap((c) => c.result.tensors), args['max-rel-rmse']);
        return;
      }
      const r = await verifyOutput(args.output, args.against, o);
      process.stdout.write(args.json ? JSON.stringify(r, jsonReplacer, 2) + '\n' : reportText(r) + '\n');
      checkMaxRelRmse(r.tensors, args['max-rel-rmse']);
    } finally {
      dispose();
    }
  },
};
