/**
 * `--method auto` (the CLI default) calibrates only models small enough for calibration to take
 * seconds: a Llama above AUTO_CALIBRATION_MAX_PARAMS is quantized with the calibration-free search
 * and the run says why, instead of having the model write its calibration text for minutes or hours.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUTO_CALIBRATION_MAX_PARAMS } from '../../src/eval/llama.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/models.js';
import { syntheticFromConfig } from '../helpers/synthetic-llama.js';

const dir = tempDir('quantkit-auto-size-');
const config = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 512, intermediate_size: 1376, num_hidden_layers: 2,
  num_attention_heads: 8, num_key_value_heads: 8, vocab_size: 512, tie_word_embeddings: false, max_position_embeddings: 512,
  rms_norm_eps: 1e-5, rope_theta: 10000, torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 2,
};

describe('--method auto on a model above its calibration size', () => {
  const model = syntheticFromConfig(join(dir, 'llama-6.9m'), config);

  it('plans without calibration and quantizes with the search, saying why', () => {
    const plan = runCli(['quantize', '--bits', '4', model, '--dry-run', '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    const p = JSON.parse(plan.stdout) as { options: { quantMethod: string; calibrated: boolean }; tensors: { name: string; bytes: number }[] };
    expect(p.options.quantMethod).toBe('auto');
    expect(p.options.calibrated).toBe(false);
    const params = 512 * 512 * 2 + 2 * (4 * 512 * 512 + 3 * 512 * 1376 + 2 * 512) + 512;
    expect(params).toBeGreaterThan(AUTO_CALIBRATION_MAX_PARAMS);

    const run = runCli(['quantize', '--bits', '4', model, '-o', join(dir, 'out')]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`--method auto without calibration (${(params / 1e6).toFixed(1)} M parameters: auto calibrates models up to ${AUTO_CALIBRATION_MAX_PARAMS / 1e6} M`);
    expect(run.stdout).toMatch(/100\.0% of weights quantized; every matrix quantized/);
  }, 60_000);
});
