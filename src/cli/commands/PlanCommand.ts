import type { CommandModule } from 'yargs';
import { Checkpoint, isDiffusersPipeline } from '../../checkpoint.js';
import { QuantkitError } from '../../errors.js';
import { type QuantizeOptions, planQuantization } from '../../plan.js';
import { planPipeline } from '../../pipeline.js';
import { localModel } from '../../quantize.js';
import { pipelinePlanJson, pipelinePlanText, planJson, planText } from '../print.js';
import { type QuantizeArgs, toQuantizeOptions, withQuantizeOptions } from '../quantize-options.js';

export const PlanCommand: CommandModule<object, QuantizeArgs & { json: boolean }> = {
  command: 'plan <model>',
  describe: 'print what quantize would do to each tensor and the exact size of every output file; writes nothing and reads local files only (a hub id from the Hugging Face cache)',
  builder: (y) =>
    withQuantizeOptions(y)
      .example('quantkit plan models/stories260k --format gguf --bits-for "*down_proj*=8"', 'per tensor: quantized how, or kept and why; per file: exact bytes')
      .example('quantkit plan ./sd-pipeline --keep "vae/*"', "a diffusers pipeline: each component's plan, and the files copied") as never,
  handler: (args) => printPlan(args.model, toQuantizeOptions(args), args.json),
};

/**
 * `plan` and `quantize --dry-run`: what is on disk only. A hub id is read from the Hugging Face cache,
 * never downloaded (pull it first, or let estimate price it from its headers).
 */
export async function printPlan(model: string, options: QuantizeOptions, json: boolean): Promise<void> {
  const path = await localModel(model, { hub: { offline: true } }).catch((e: unknown) => {
    if (!(e instanceof QuantkitError && e.code === 'ERR_HUB_OFFLINE')) throw e;
    throw new QuantkitError('ERR_CHECKPOINT', `no such file or directory, nor a hub repository in the Hugging Face cache: plan reads local files only (for a hub id: quantkit pull ${model} first, or quantkit estimate ${model} --scenario packed --bits ${options.bits} for sizes from the hub's headers)`, { file: model });
  });
  if (await isDiffusersPipeline(path)) {
    const p = await planPipeline(path, options);
    process.stdout.write(json ? JSON.stringify(pipelinePlanJson(p), null, 2) + '\n' : pipelinePlanText(p) + '\n');
    return;
  }
  const ckpt = await Checkpoint.open(path);
  try {
    const plan = await planQuantization(ckpt, options);
    process.stdout.write(json ? JSON.stringify(planJson(plan), null, 2) + '\n' : planText(plan) + '\n');
  } finally {
    await ckpt.close();
  }
}
