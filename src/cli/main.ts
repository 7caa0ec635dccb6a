/** The quantkit command line: yargs over the library API, one file per command in commands/. */
import yargs from 'yargs';
import { EXIT_CODES, QuantkitError } from '../errors.js';
import { EstimateCommand } from './commands/EstimateCommand.js';
import { InfoCommand } from './commands/InfoCommand.js';
import { PlanCommand } from './commands/PlanCommand.js';
import { PullCommand } from './commands/PullCommand.js';
import { QuantizeCommand } from './commands/QuantizeCommand.js';
import { ReportCommand } from './commands/ReportCommand.js';
import { VerifyCommand } from './commands/VerifyCommand.js';

export async function main(argv: string[]): Promise<number> {
  try {
    await yargs(argv)
      .scriptName('quantkit')
      .command(QuantizeCommand)
      .command(PlanCommand)
      .command(VerifyCommand)
      .command(EstimateCommand)
      .command(ReportCommand)
      .command(PullCommand)
      .command(InfoCommand)
      .demandCommand(1, 'name a command: quantize, plan, verify, estimate, report, pull or info')
      .strict()
      .fail((msg, err) => {
        throw err ?? new QuantkitError('ERR_USAGE', msg);
      })
      .help()
      .version(false)
      .parseAsync();
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

