/** Errors cross the library boundary as typed subclasses with a stable code and exit code. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/checkpoint.js';
import { EXIT_CODES, type ErrorCode, HubError, ModelError, OutputError, QuantkitError, SafetensorsError, UsageError, WeightValueError } from '../src/errors.js';
import { quantize } from '../src/quantize.js';
import { STORIES260K, tempDir } from './helpers/models.js';

describe('error classes', () => {
  it('every code maps to one subclass, with its name and exit code', () => {
    for (const code of Object.keys(EXIT_CODES) as ErrorCode[]) {
      const e = new QuantkitError(code, 'x', { file: 'f', tensor: 't' });
      expect(e).toBeInstanceOf(QuantkitError);
      expect(e).toBeInstanceOf(Error);
      expect(e.constructor).not.toBe(QuantkitError);
      expect(e.name).toBe(e.constructor.name);
      expect(e.exitCode).toBe(EXIT_CODES[code]);
      expect(e.message).toBe("f: tensor 't': x");
    }
    expect(new QuantkitError('ERR_HUB_AUTH', 'x')).toBeInstanceOf(HubError);
    expect(new QuantkitError('ERR_HUB_AUTH', 'x')).not.toBeInstanceOf(UsageError);
    expect(new QuantkitError('ERR_SCALE_OVERFLOW', 'x')).toBeInstanceOf(WeightValueError);
  });

  it('real failures arrive as their category', async () => {
    const dir = tempDir('quantkit-errors-');
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 0, 0]));
    const e1 = await Checkpoint.open(bad).catch((e) => e);
    expect(e1).toBeInstanceOf(SafetensorsError);
    expect(e1.code).toMatch(/^ERR_SAFETENSORS_/);
    const e2 = await quantize(STORIES260K, { bits: 4, format: 'safetensors', quantMethod: 'iq4nl', output: join(dir, 'o') }).catch((e) => e);
    expect(e2).toBeInstanceOf(UsageError);
    const e3 = await quantize(STORIES260K, { bits: 4, output: dir }).catch((e) => e);
    expect(e3).toBeInstanceOf(OutputError);
    expect(e3.code).toBe('ERR_OUTPUT_EXISTS');
    const e4 = await Checkpoint.open(join(dir, 'missing')).catch((e) => e);
    expect(e4).toBeInstanceOf(ModelError);
  });
});
