/**
 * Options go before or after the positional argument, in every command: a repeatable (array) option
 * takes one value per occurrence and never swallows the model (issue: `quantkit quantize --bits 4 --keep
 * '*norm*' models/stories260k` exited 2 with "Not enough non-option arguments").
 */
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import yargs, { type CommandModule } from 'yargs';
import { describe, expect, it } from 'vitest';
import { COMMANDS, buildCli } from '../../src/cli/main.js';
import { Checkpoint } from '../../src/checkpoint.js';
import { type QuantizeOptions, planQuantization } from '../../src/plan.js';
import { defaultOutputName } from '../../src/quantize.js';
import { runCli } from '../helpers/cli.js';
import { STORIES260K, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-order-');

/** Parses argv with the real parser and commands, the handlers replaced by one that hands back the arguments. */
async function parse(argv: string[]): Promise<Record<string, unknown>> {
  let got: Record<string, unknown> | undefined;
  const capture = COMMANDS.map((c) => ({ ...c, handler: (a: Record<string, unknown>) => void (got = a) }));
  await buildCli(argv, capture).parseAsync();
  if (!got) throw new Error(`no command ran for ${argv.join(' ')}`);
  return got;
}

/** Every command's repeatable options, read off its own builder: options added later are covered too. */
const cases = COMMANDS.flatMap((c: CommandModule<object, unknown>) => {
  const [name, ...rest] = String(c.command).split(' ');
  const positional = /<([\w-]+)>/.exec(rest.join(' '))?.[1];
  // getOptions() is yargs' own (untyped in @types/yargs): the options a builder declared, by kind.
  const built = (c.builder as (y: ReturnType<typeof yargs>) => ReturnType<typeof yargs>)(yargs([])) as unknown as { getOptions(): { array: string[] } };
  return positional ? built.getOptions().array.map((option) => ({ name: name!, positional, option })) : [];
});

describe('every repeatable option, in every position', () => {
  it('covers the commands that have one', () => {
    expect(new Set(cases.map((c) => c.name))).toEqual(new Set(['quantize', 'plan', 'estimate', 'report', 'pull']));
  });

  for (const { name, positional, option } of cases) {
    const flag = `--${option}`;
    it(`${name} ${flag}`, async () => {
      const forms: [string[], string[]][] = [
        [[flag, 'a', 'M'], ['a']],
        [[`${flag}=a`, 'M'], ['a']],
        [['M', flag, 'a'], ['a']],
        [[flag, 'a', flag, 'b', 'M', '--json'], ['a', 'b']],
        [[flag, 'a', 'M', flag, 'b'], ['a', 'b']],
        [[`${flag}=a`, '--json', 'M', `${flag}=b`], ['a', 'b']],
      ];
      for (const [args, values] of forms) {
        const a = await parse([name, ...args]);
        expect(a[positional], args.join(' ')).toBe('M');
        expect(a[option], args.join(' ')).toEqual(values);
      }
    });
  }
});

describe('the issue, run as written', () => {
  it('quantkit quantize --bits 4 --keep "*norm*" models/stories260k', () => {
    mkdirSync(join(dir, 'models'));
    symlinkSync(STORIES260K, join(dir, 'models', 'stories260k'));
    const r = runCli(['quantize', '--bits', '4', '--keep', '*norm*', 'models/stories260k'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // The default method (auto) chooses zero points per tensor, so the default folder says auto, not sym.
    const report = JSON.parse(readFileSync(join(dir, 'stories260k-int4-g32-auto-safetensors', 'quantization-report.json'), 'utf8'));
    const norms = report.plan.filter((p: { name: string }) => /norm/.test(p.name));
    expect(norms.length).toBeGreaterThan(0);
    for (const p of norms) expect(p).toMatchObject({ treatment: 'kept', reason: 'matches --keep' });
  });

  it('--keep=GLOB before the model, and --bits-for after it', () => {
    const r = runCli(['quantize', '--keep=*norm*', STORIES260K, '--bits-for', '*down_proj*=8', '--dry-run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.tensors.find((t: { name: string }) => t.name === 'model.norm.weight').reason).toBe('matches --keep');
    expect(plan.tensors.find((t: { name: string }) => t.name === 'model.layers.0.mlp.down_proj.weight').format).toMatch(/^int8/);
  });

  it('plan, estimate and report take the same forms', () => {
    const p = runCli(['plan', '--bits-for', '*o_proj*=8', '--keep', '*norm*', STORIES260K, '--format', 'gguf', '--json']);
    expect(p.code, p.stderr).toBe(0);
    const plan = JSON.parse(p.stdout);
    expect(plan.tensors.find((t: { name: string }) => t.name === 'model.layers.0.self_attn.o_proj.weight').format).toMatch(/^Q8_0( auto)?$/);
    expect(plan.tensors.find((t: { name: string }) => t.name === 'model.norm.weight').reason).toMatch(/^matches --keep/);

    const e = runCli(['estimate', '--keep', '*norm*', '--bits-for', '*down_proj*=8', STORIES260K, '--scenario', 'packed', '--bits', '4', '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).assumptions).toMatchObject({ keep: ['*norm*'], bitsFor: ['*down_proj*=8'] });

    const out = join(dir, 'report');
    const r = runCli(['report', '--keep', '*norm*', STORIES260K, '--bits', '4', '--group-size', '32', '--mode', 'sym', '--method', 'rtn', '--format', 'safetensors', '--weights-only', '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).variants).toHaveLength(1);
  });

  it('pull --include GLOB ORG/NAME reaches the hub step (here: not in an empty cache, offline)', () => {
    const r = runCli(['pull', '--include', '*.md', 'org/name', '--exclude', '*.bin'], { env: { HF_HUB_OFFLINE: '1', HF_HUB_CACHE: join(dir, 'empty-cache') } });
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/org\/name@main is not in the cache/);
  });

  it('a missing positional says which one, in the command\'s terms', () => {
    const r = runCli(['quantize', '--bits', '4', '--keep', '*norm*']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("quantkit: quantize needs <model>: quantkit quantize <model> [options] (see quantkit quantize --help)\n");
  });
});

describe('the default output folder names what was asked', () => {
  it('says auto where the plan adds zero points, and the mode where one was given or nothing is added', async () => {
    const ckpt = await Checkpoint.open(STORIES260K);
    try {
      const named = async (o: QuantizeOptions) => defaultOutputName('models/stories260k', o, await planQuantization(ckpt, o));
      expect(await named({ bits: 4, quantMethod: 'auto' })).toBe('stories260k-int4-g32-auto-safetensors');
      expect(await named({ bits: 4, quantMethod: 'auto', mode: 'sym' })).toBe('stories260k-int4-g32-sym-safetensors');
      expect(await named({ bits: 4, quantMethod: 'auto', mode: 'asym' })).toBe('stories260k-int4-g32-asym-safetensors');
      expect(await named({ bits: 4, quantMethod: 'auto', format: 'gguf' })).toBe('stories260k-int4-g32-sym-gguf');
      expect(await named({ bits: 8, quantMethod: 'rtn' })).toBe('stories260k-int8-g32-sym-safetensors');
      expect(await named({ bits: 4, quantMethod: 'search', groupSize: 128 })).toBe('stories260k-int4-g128-sym-search-safetensors');
      // Several plans (a diffusers pipeline's components): auto where any of them adds zero points.
      const sym = await planQuantization(ckpt, { bits: 4, quantMethod: 'auto', mode: 'sym' });
      const auto = await planQuantization(ckpt, { bits: 4, quantMethod: 'auto' });
      expect(defaultOutputName('models/stories260k', { bits: 4, quantMethod: 'auto' }, [sym, sym])).toBe('stories260k-int4-g32-sym-safetensors');
      expect(defaultOutputName('models/stories260k', { bits: 4, quantMethod: 'auto' }, [sym, auto])).toBe('stories260k-int4-g32-auto-safetensors');
    } finally {
      await ckpt.close();
    }
  });
});
