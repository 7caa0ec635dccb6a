/**
 * Every path a report records names what the user has after the run: the published output, never the
 * temporary `<out>.quantkit-tmp-<pid>-<hex>` it was built in. (Issue: quantization-report.json's
 * top-level `output` named the temporary folder.)
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeDiffusersPipeline } from '../scripts/make-diffusers-pipeline.js';
import { runCli } from './helpers/cli.js';
import { STORIES260K, tempDir } from './helpers/models.js';

const dir = tempDir('quantkit-report-paths-');

/** Every string in a JSON value that looks like an absolute path, with where it was found. */
function paths(v: unknown, at = '$'): [string, string][] {
  if (typeof v === 'string') return v.startsWith('/') ? [[at, v]] : [];
  if (Array.isArray(v)) return v.flatMap((x, i) => paths(x, `${at}[${i}]`));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => paths(x, `${at}.${k}`));
  return [];
}

function expectPathsExist(file: string): [string, string][] {
  const found = paths(JSON.parse(readFileSync(file, 'utf8')));
  for (const [at, p] of found) {
    expect(p, `${file} ${at}`).not.toMatch(/quantkit-(tmp|old)/);
    expect(existsSync(p), `${file} ${at} = ${p}`).toBe(true);
  }
  return found;
}

describe('report paths', () => {
  for (const format of ['safetensors', 'gguf']) {
    it(`quantize --format ${format}: output is the final folder, with -o relative to the working directory`, () => {
      const name = `out-${format}`;
      const r = runCli(['quantize', STORIES260K, '--format', format, '-o', name, '-q'], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      const file = join(dir, name, 'quantization-report.json');
      const report = JSON.parse(readFileSync(file, 'utf8'));
      expect(report.output).toBe(join(dir, name));
      expect(report.options.output).toBe(join(dir, name));
      expect(expectPathsExist(file).map(([at]) => at).sort()).toEqual(['$.evaluation.file', '$.options.output', '$.output', '$.source']); // evaluation.file: the bundled text the perplexity was measured on
    });
  }

  it('--json prints the same report the file holds', () => {
    const out = join(dir, 'json-out');
    const r = runCli(['quantize', STORIES260K, '--bits', '8', '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(readFileSync(join(out, 'quantization-report.json'), 'utf8')));
  });

  it("quantkit report's report.json", () => {
    const out = join(dir, 'sweep');
    const r = runCli(['report', STORIES260K, '--bits', '4', '--group-size', '32', '--mode', 'sym', '--method', 'rtn', '--format', 'gguf', '--weights-only', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(expectPathsExist(join(out, 'report.json')).length).toBeGreaterThan(0);
  });

  it('a pipeline: its report and every component report', async () => {
    const src = await makeDiffusersPipeline(join(dir, 'sd'));
    const out = join(dir, 'sd-w8');
    const r = runCli(['quantize', src, '--bits', '8', '-o', out, '-q']);
    expect(r.code, r.stderr).toBe(0);
    const top = expectPathsExist(join(out, 'quantization-report.json'));
    expect(top.find(([at]) => at === '$.output')?.[1]).toBe(out);
    for (const c of ['unet', 'text_encoder']) {
      const found = expectPathsExist(join(out, c, 'quantization-report.json'));
      expect(found.find(([at]) => at === '$.output')?.[1]).toBe(join(out, c));
    }
  });
});
