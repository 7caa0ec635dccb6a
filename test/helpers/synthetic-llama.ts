/**
 * A small checkpoint of any architecture estimate has formulas for, written from its config.json alone
 * (the tensors architectureShapes lists, bf16 values from a sine), with the bundled stories260k tokenizer
 * when the vocabulary is its 512 tokens: enough to plan, dry-run and write runnable GGUF files.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { architectureShapes } from '../../src/estimate/architectures.js';
import { headerFor, writeRaw } from './fixtures.js';
import { STORIES260K } from './models.js';

export function syntheticFromConfig(dir: string, config: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const tensors = architectureShapes(config, join(dir, 'config.json')).tensors.map((t) => ({ name: t.name, dtype: 'BF16', shape: t.shape, bytes: 2 * t.shape.reduce((a, b) => a * b, 1) }));
  const { header, dataBytes } = headerFor(tensors);
  const data = Buffer.alloc(dataBytes);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < dataBytes / 2; i++) {
    f[0] = 0.05 * Math.sin(i * 0.37);
    data.writeUInt16LE(u[0]! >>> 16, i * 2);
  }
  writeRaw(join(dir, 'model.safetensors'), header, data);
  if (config.vocab_size === 512) for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(STORIES260K, f), join(dir, f));
  return dir;
}
