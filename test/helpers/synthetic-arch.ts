/** A small checkpoint of any model_type (random-ish BF16 weights), for architecture-dispatch tests. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headerFor, writeRaw } from './fixtures.js';

export function syntheticDir(dir: string, modelType: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: modelType, torch_dtype: 'bfloat16' }));
  const tensors = [
    { name: 'blocks.0.att.key.weight', dtype: 'BF16', shape: [64, 64], bytes: 64 * 64 * 2 },
    { name: 'blocks.0.ln1.weight', dtype: 'BF16', shape: [64], bytes: 128 },
  ];
  const data = Buffer.alloc(tensors.reduce((s, t) => s + t.bytes, 0));
  // bf16 values in [-1, 1): the high half of a float32 bit pattern.
  for (let i = 0; i < data.length / 2; i++) {
    const f = new Float32Array([Math.sin(i * 0.37)]);
    data.writeUInt16LE(new Uint32Array(f.buffer)[0]! >>> 16, i * 2);
  }
  writeRaw(join(dir, 'model.safetensors'), headerFor(tensors).header, data);
  return dir;
}
