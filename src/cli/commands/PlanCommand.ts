import type { CommandModule } from 'yargs';
import { Checkpoint } from '../../checkpoint.js';
import { planResolved, resolveOptions } from '../../plan.js';
import { planText } from '../print.js';
import { type QuantizeArgs, toQuantizeOptions, withQuantizeOptions } from '../quantize-options.js';
import { planJson } from './QuantizeCommand.js';

export const PlanCommand: CommandModule<object, QuantizeArgs & { json: boolean }> = {
  command: 'plan <model>',
  describe: 'print what quantize would do to each tensor and the exact size of every output file',
  builder: (y) => withQuantizeOptions(y) as never,
  handler: async (args) => {
    const ckpt = await Checkpoint.open(args.model);
    try {
      const plan = await planResolved(ckpt, resolveOptions(toQuantizeOptions(args)));
      process.stdout.write(args.json ? JSON.stringify(planJson(plan), null, 2) + '\n' : planText(plan) + '\n');
    } finally {
      await ckpt.close();
    }
  },
};
