/** The quantkit command line: yargs over the library API, one file per command in commands/. */
import yargs, { type Argv, type CommandModule } from 'yargs';
import { EXIT_CODES, QuantkitError } from '../errors.js';
import { VERSION } from '../version.js';
import { EstimateCommand } from './commands/EstimateCommand.js';
import { ImatrixCommand } from './commands/ImatrixCommand.js';
import { InfoCommand } from './commands/InfoCommand.js';
import { PlanCommand } from './commands/PlanCommand.js';
import { PullCommand } from './commands/PullCommand.js';
import { QuantizeCommand } from './commands/QuantizeCommand.js';
import { ReportCommand } from './commands/ReportCommand.js';
import { VerifyCommand } from './commands/VerifyCommand.js';

// Each command has its own argument type; the list only registers them.
export const COMMANDS: CommandModule<object, any>[] = [QuantizeCommand, PlanCommand, VerifyCommand, EstimateCommand, ReportCommand, ImatrixCommand, PullCommand, InfoCommand];

/**
 * How every command's arguments are parsed. An array option takes one value per occurrence
 * (`--keep a --keep b`), so options go before or after the positional and `--keep x MODEL` never
 * swallows MODEL: yargs' default (greedy arrays) eats every word after an array flag.
 */
const PARSER_CONFIGURATION = { 'greedy-arrays': false } as const;

const EPILOG = `Options go before or after the positional argument. Repeatable options (--keep, --bits-for, --include, ...) take one value each time: --keep '*norm*' --keep '*embed*'.
Exit codes: 0 ok, 2 usage, 3 bad input (checkpoint, NaN/Inf, plan), 4 output refused, 5 --max-rel-rmse exceeded, 6 verification failed, 7 Hugging Face Hub, 130 interrupted.
Sizes: GB = 10^9 bytes, GiB = 2^30 bytes. Documentation: README.md.`;

/** The parser with every command registered (tests pass the commands with their own handlers). */
export function buildCli(argv: string[], commands = COMMANDS): Argv {
  let y = yargs(argv)
    .scriptName('quantkit')
    .parserConfiguration(PARSER_CONFIGURATION)
    .usage('quantkit <command> [options]\n\nQuantize Hugging Face safetensors checkpoints (GGUF for llama.cpp, compressed-tensors safetensors for vLLM/transformers), verify what was written, and predict memory.');
  // Every command's help ends with the same notes as the top level's (yargs does not carry an epilog down).
  for (const c of commands) y = y.command({ ...c, builder: (cy: Argv) => (typeof c.builder === 'function' ? (c.builder(cy) as Argv) : cy.options(c.builder ?? {})).epilog(EPILOG) });
  skipHelpCache(y);
  return y
    .example('quantkit quantize models/stories260k --bits 4 --keep "*norm*"', '4-bit compressed-tensors safetensors, norms kept')
    .example('quantkit quantize models/stories260k --format gguf --gguf-type mobile', 'a GGUF file llama.cpp runs')
    .example('quantkit quantize ./sd-pipeline --bits 8 --keep "vae/*"', 'a diffusers pipeline folder (model_index.json), the VAE kept')
    .example('quantkit estimate config.json --dtype nf4 --gpu RTX4090', 'does it fit? from config.json alone')
    .demandCommand(1, 'name a command: quantize, plan, verify, estimate, report, imatrix, pull or info')
    .recommendCommands()
    .strict()
    .fail((msg, err) => {
      throw err ?? new QuantkitError('ERR_USAGE', usageMessage(msg, argv));
    })
    .help()
    .alias('help', 'h')
    .version(VERSION)
    .epilog(EPILOG)
    .wrap(Math.min(120, process.stdout.columns || 100));
}

/**
 * yargs renders the running command's whole help text as it starts the handler, to have it ready in
 * case the command fails: 100-120 ms of a cold start for quantize's options, on the main thread, before
 * the first tensor is read. Failures here never print help (fail() throws, main() prints one message),
 * so that rendering is skipped; --help itself renders as before. (yargs' internal method: left alone
 * if a later yargs lacks it.)
 */
function skipHelpCache(y: Argv): void {
  const usage = (y as Argv & { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } }).getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}

/** yargs' own messages, said in the command's terms, with where to look next. */
function usageMessage(msg: string, argv: string[]): string {
  const command = COMMANDS.find((c) => String(c.command).split(' ')[0] === argv[0]);
  const suggestion = /^Did you mean (.+)\?$/.exec(msg);
  if (suggestion) return `unknown command '${argv[0]}': did you mean ${suggestion[1]}?`;
  if (!command) return msg;
  const [name, ...positionals] = String(command.command).split(' ');
  if (/^Not enough non-option arguments/.test(msg)) return `${name} needs ${positionals.join(' ')}: quantkit ${command.command} [options] (see quantkit ${name} --help)`;
  return `${msg} (see quantkit ${name} --help)`;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildCli(argv).parseAsync();
    return 0;
  } catch (e) {
    return report(e);
  }
}

function report(e: unknown): number {
  if (e instanceof QuantkitError) {
    process.stderr.write(`quantkit: ${e.message}\n`);
    return e.exitCode;
  }
  const err = e as Error & { code?: string; name?: string };
  if (err?.name === 'AbortError' || (err instanceof Error && /interrupted by SIG/.test(String(err.message)))) {
    process.stderr.write('quantkit: interrupted; no output was written\n');
    return EXIT_CODES.ERR_ABORTED;
  }
  if (err?.code === 'ERR_NATIVE_ARGUMENT') {
    process.stderr.write(`quantkit: ${err.message}\n`);
    return EXIT_CODES.ERR_NATIVE;
  }
  process.stderr.write(`quantkit: unexpected error: ${err?.stack ?? String(e)}\n`);
  return 1;
}
