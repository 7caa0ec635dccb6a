/**
 * `estimate --scenario packed --bits 4` prices what the plain `quantize --bits 4` writes: the CLI's
 * default method (auto) quantizes the embedding and head too, with F16 scales, so an estimate planned
 * with the library's rtn default would price another file. Both commands go through the one planner;
 * quantize's plan (--dry-run) and estimate's components must agree file for file.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { TINYSTORIES656K } from '../helpers/models.js';

describe('estimate --bits prices the plain quantize command', () => {
  for (const format of ['safetensors', 'gguf'])
    it(`tinystories-656k, --format ${format}`, () => {
      const plan = runCli(['quantize', '--bits', '4', '--format', format, TINYSTORIES656K, '--dry-run', '--json']);
      expect(plan.code, plan.stderr).toBe(0);
      const files = (JSON.parse(plan.stdout) as { files: { name: string; bytes: number }[]; options: { quantMethod: string } });
      expect(files.options.quantMethod).toBe('auto');
      const est = runCli(['estimate', TINYSTORIES656K, '--scenario', 'packed', '--bits', '4', '--format', format, '--json']);
      expect(est.code, est.stderr).toBe(0);
      const e = JSON.parse(est.stdout) as { peak_bytes: number; components: Record<string, number> };
      expect(e.components).toEqual(Object.fromEntries(files.files.map((f) => [f.name, f.bytes])));
      expect(e.peak_bytes).toBe(files.files.reduce((s, f) => s + f.bytes, 0));
    });
});
