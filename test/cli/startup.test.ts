/**
 * What the CLI does before a command's work starts is on every run's critical path: running a command
 * must not render its help text (yargs does by default, 100-120 ms of a cold start for quantize), while
 * --help still prints it.
 */
import { describe, expect, it } from 'vitest';
import { COMMANDS, buildCli } from '../../src/cli/main.js';

type Usage = { help: () => string };

describe('CLI start-up', () => {
  it('running a command does not render its help; --help does', async () => {
    let ran = 0;
    const commands = COMMANDS.map((c) => ({ ...c, handler: async () => void ran++ }));
    const rendered = async (argv: string[]) => {
      const y = buildCli(argv, commands).exitProcess(false);
      const usage = (y as unknown as { getInternalMethods: () => { getUsageInstance: () => Usage } }).getInternalMethods().getUsageInstance();
      const help = usage.help.bind(usage);
      let calls = 0;
      usage.help = () => {
        calls++;
        return help();
      };
      const log = console.log;
      console.log = () => undefined;
      try {
        await y.parseAsync();
      } finally {
        console.log = log;
      }
      return calls;
    };
    expect(await rendered(['quantize', 'some-model', '--bits', '4', '-o', 'out'])).toBe(0);
    expect(ran).toBe(1);
    expect(await rendered(['quantize', '--help'])).toBeGreaterThan(0);
    expect(ran).toBe(1);
  });
});
