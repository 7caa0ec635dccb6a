import type { CommandModule } from 'yargs';
import { jsonReplacer } from '../../quantize.js';
import { checkMaxRelRmse, verifyOutput } from '../../verify.js';
import { reportText } from '../print.js';
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
      .positional('output', { type: 'string', demandOption: true, describe: 'output directory written by quantize' })
      .option('against', { type: 'string', demandOption: true, describe: 'the source checkpoint directory' })
      .option('max-rel-rmse', { type: 'number', describe: 'fail (exit 5) if any quantized tensor exceeds this relative RMSE' })
      .option('threads', { type: 'number', describe: 'kernel threads (default: the number of CPUs)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }) as never,
  handler: async (args) => {
    const threads = checkThreads(args.threads);
    const { signal, dispose } = abortOnSigint();
    const r = await verifyOutput(args.output, args.against, { signal, ...(threads !== undefined ? { threads } : {}) }).finally(dispose);
    process.stdout.write(args.json ? JSON.stringify(r, jsonReplacer, 2) + '\n' : reportText(r) + '\n');
    checkMaxRelRmse(r.tensors, args['max-rel-rmse']);
  },
};
