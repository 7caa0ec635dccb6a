/**
 * `quantkit estimate DIR` on a folder holding only config.json (what people download first to decide
 * whether a model fits): estimated from the architecture formulas, and the output says which numbers
 * come from the config alone. (Issue: refused with "no model.safetensors ... in this directory".)
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { STORIES260K, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-config-only-');

function configOnly(name: string, config?: object): string {
  const d = join(dir, name);
  mkdirSync(d);
  if (config) writeFileSync(join(d, 'config.json'), JSON.stringify(config));
  else copyFileSync(join(STORIES260K, 'config.json'), join(d, 'config.json'));
  return d;
}

describe('estimate on a folder holding only config.json', () => {
  const d = configOnly('stories260k-config');

  it('estimates, and says the counts come from the formulas', () => {
    const r = runCli(['estimate', d]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^stories260k-config: 260,032 parameters \(config formulas\)\nfrom config\.json alone \(no weights read\): the parameter count and every tensor's shape come from the architecture's formulas/);
    expect(r.stdout).toMatch(/peak per GPU \(device\): /);
  });

  it('gives what the weights would give for this model: same parameters, same weight bytes', () => {
    const fromConfig = JSON.parse(runCli(['estimate', d, '--json']).stdout);
    const fromHeaders = JSON.parse(runCli(['estimate', STORIES260K, '--json']).stdout);
    expect(fromConfig.params_source).toBe('config formulas');
    expect(fromHeaders.params_source).toBe('safetensors headers');
    expect(fromConfig.params).toBe(fromHeaders.params);
    expect(fromConfig.components).toEqual(fromHeaders.components);
  });

  it('the packed scenario plans quantkit formats from the shapes', () => {
    const r = runCli(['estimate', d, '--scenario', 'packed', '--bits', '4', '--format', 'gguf', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).peak_kind).toBe('file');
  });

  it('an architecture without formulas, or no config.json either, is refused with the reason', () => {
    const odd = configOnly('odd', { model_type: 'not-a-model' });
    const r = runCli(['estimate', odd]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/model_type 'not-a-model' has no parameter formulas; supported: .* \(no safetensors weights in this folder: the estimate would come from config\.json alone\)/);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const e = runCli(['estimate', empty]);
    expect(e.code).toBe(3);
    expect(e.stderr).toMatch(/no model\.safetensors or model\.safetensors\.index\.json in this directory \(nor a diffusers diffusion_pytorch_model\.safetensors\)\n$/);
  });
});
