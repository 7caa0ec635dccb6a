/** Paths to the bundled real models and helpers to read their tensors as float32 in tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { toFloat32 } from '../../src/convert.js';
import { LlamaModel } from '../../src/eval/llama.js';
import { Tokenizer } from '../../src/eval/tokenizer.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const STORIES260K = join(ROOT, 'models', 'stories260k');
export const TINYSTORIES656K = join(ROOT, 'models', 'tinystories-656k');
export const CLI = join(ROOT, 'dist', 'cli', 'quantkit.js');

export async function loadFloatTensors(dir: string): Promise<Map<string, { shape: number[]; dtype: string; raw: Uint8Array; values: Float32Array }>> {
  const ckpt = await Checkpoint.open(dir);
  try {
    const out = new Map();
    for (const t of ckpt.tensors) {
      const raw = await ckpt.read(t);
      out.set(t.name, { shape: t.shape, dtype: t.dtype, raw, values: toFloat32(raw, t.dtype) });
    }
    return out;
  } finally {
    await ckpt.close();
  }
}

/** A fresh temporary directory, removed after the test file. */
export function tempDir(tag = 'quantkit-test-'): string {
  const d = mkdtempSync(join(tmpdir(), tag));
  afterAll(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A bundled Llama model loaded for the reference forward pass, with its tokenizer. */
export async function openLlama(dir: string): Promise<{ model: LlamaModel; tok: Tokenizer }> {
  const ckpt = await Checkpoint.open(dir);
  try {
    return { model: await LlamaModel.load(ckpt), tok: await Tokenizer.fromFile(join(dir, 'tokenizer.json')) };
  } finally {
    await ckpt.close();
  }
}
