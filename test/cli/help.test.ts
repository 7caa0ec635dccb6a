/**
 * --help as a newcomer reads it: every command answers, every option says what it does (defaults and
 * choices shown by yargs), examples where a command takes options, and the notes every command shares
 * (options anywhere, exit codes, GB vs GiB).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/main.js';
import { runCli } from '../helpers/cli.js';
import { ROOT } from '../helpers/models.js';

const names = COMMANDS.map((c) => String(c.command).split(' ')[0]!);

describe('--help', () => {
  for (const name of ['', ...names]) {
    it(`quantkit ${name || '(top level)'} --help`, () => {
      const r = runCli([...(name ? [name] : []), '--help']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.startsWith(`quantkit ${name || '<command>'}`)).toBe(true);
      // An option line whose flag is followed directly by its [type]: no description.
      const bare = r.stdout.split('\n').filter((l) => /^\s+(-\w, )?--[\w-]+\s+\[/.test(l));
      expect(bare).toEqual([]);
      expect(r.stdout).toMatch(/Options go before or after the positional argument/);
      expect(r.stdout).toMatch(/Exit codes: 0 ok, 2 usage, 3 bad input/);
      expect(r.stdout).toMatch(/GB = 10\^9 bytes, GiB = 2\^30 bytes/);
      if (name !== 'info') expect(r.stdout).toMatch(/\nExamples:\n/);
    });
  }

  it('--version prints the package version', () => {
    const r = runCli(['--version']);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('a mistyped command gets a suggestion', () => {
    const r = runCli(['quantise', 'models/x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("quantkit: unknown command 'quantise': did you mean quantize?\n");
  });
});
