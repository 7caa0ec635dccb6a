/** Model directories: single files, shards with an index, tied weights, and hostile indexes. */
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint, modelName } from '../src/checkpoint.js';
import { QuantkitError } from '../src/errors.js';
import { quantize } from '../src/quantize.js';
import { STORIES260K, TINYSTORIES656K, tempDir } from './helpers/models.js';
import { headerFor, writeRaw } from './helpers/fixtures.js';

const dir = tempDir();

async function openError(p: string): Promise<QuantkitError> {
  const e = await Checkpoint.open(p).then(
    async (c) => {
      await c.close();
      return undefined;
    },
    (err) => err,
  );
  expect(e).toBeInstanceOf(QuantkitError);
  return e as QuantkitError;
}

function shardedModel(name: string, index: unknown, shards: Record<string, { name: string; dtype: string; shape: number[]; bytes: number }[]>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'model.safetensors.index.json'), typeof index === 'string' ? index : JSON.stringify(index));
  for (const [file, tensors] of Object.entries(shards)) {
    const { header, dataBytes } = headerFor(tensors);
    writeRaw(join(d, file), header, dataBytes);
  }
  return d;
}

describe('Checkpoint', () => {
  it('opens the bf16 model with tie_word_embeddings and aliases lm_head to the embedding', async () => {
    const c = await Checkpoint.open(STORIES260K);
    expect(c.tensors).toHaveLength(47);
    expect(c.aliases.get('lm_head.weight')).toBe('model.embed_tokens.weight');
    expect(c.config?.model_type).toBe('llama');
    await c.close();
  });

  it('opens the f32 model whose embedding is an alias of lm_head in __metadata__', async () => {
    const c = await Checkpoint.open(TINYSTORIES656K);
    expect(c.tensor('model.embed_tokens.weight')).toBeUndefined();
    expect(c.aliases.get('model.embed_tokens.weight')).toBe('lm_head.weight');
    await c.close();
  });

  it('reads a sharded checkpoint through its index', async () => {
    const d = shardedModel('sharded', { metadata: {}, weight_map: { a: 's1.safetensors', b: 's2.safetensors', c: 's2.safetensors' } }, {
      's1.safetensors': [{ name: 'a', dtype: 'F32', shape: [2, 32], bytes: 256 }],
      's2.safetensors': [{ name: 'b', dtype: 'BF16', shape: [4, 32], bytes: 256 }, { name: 'c', dtype: 'F32', shape: [4], bytes: 16 }],
    });
    const c = await Checkpoint.open(d);
    expect(c.tensors.map((t) => t.name)).toEqual(['a', 'b', 'c']);
    expect(c.files).toHaveLength(2);
    expect(c.totalBytes).toBe(528);
    await c.close();
  });

  const bad: [string, () => string, RegExp][] = [
    ['an index entry escaping with ../', () => shardedModel('escape', { weight_map: { a: '../s1.safetensors' } }, {}), /leaves the model directory/],
    ['an absolute index path', () => shardedModel('absolute', { weight_map: { a: '/etc/passwd' } }, {}), /leaves the model directory/],
    ['a missing shard', () => shardedModel('missing', { weight_map: { a: 's9.safetensors' } }, {}), /shard 's9.safetensors' is missing/],
    ['an index without weight_map', () => shardedModel('nomap', { metadata: {} }, {}), /no weight_map/],
    ['an index that is not JSON', () => shardedModel('badjson', '{', {}), /not valid JSON/],
    ['a tensor listed for the wrong shard', () => shardedModel('wrongshard', { weight_map: { a: 's2.safetensors', b: 's2.safetensors' } }, {
      's1.safetensors': [{ name: 'a', dtype: 'F32', shape: [1], bytes: 4 }],
      's2.safetensors': [{ name: 'b', dtype: 'F32', shape: [1], bytes: 4 }],
    }), /listed in model.safetensors.index.json but missing from the shard/],
    ['a tensor stored in two shards', () => shardedModel('twice', { weight_map: { a: 's1.safetensors', b: 's2.safetensors' } }, {
      's1.safetensors': [{ name: 'a', dtype: 'F32', shape: [1], bytes: 4 }],
      's2.safetensors': [{ name: 'a', dtype: 'F32', shape: [1], bytes: 4 }, { name: 'b', dtype: 'F32', shape: [1], bytes: 4 }],
    }), /stored twice|not listed for this shard/],
    ['a directory with no weights', () => { const d = join(dir, 'empty'); mkdirSync(d); return d; }, /no model.safetensors/],
    ['a symlink loop as the weights file', () => { const d = join(dir, 'loop'); mkdirSync(d); symlinkSync('model.safetensors', join(d, 'model.safetensors')); return d; }, /ELOOP|no model.safetensors/],
    ['a directory where model.safetensors should be', () => { const d = join(dir, 'dirfile'); mkdirSync(join(d, 'model.safetensors'), { recursive: true }); return d; }, /not a regular file/],
    ['a config.json that is not an object', () => { const d = join(dir, 'badconfig'); mkdirSync(d); writeFileSync(join(d, 'config.json'), '[1]'); copyFileSync(join(STORIES260K, 'model.safetensors'), join(d, 'model.safetensors')); return d; }, /config.json is not a JSON object/],
  ];
  for (const [label, make, msg] of bad) {
    it(`rejects ${label}`, async () => {
      const e = await openError(make());
      expect(e.message).toMatch(msg);
      expect(e.code).toBe('ERR_CHECKPOINT');
    });
  }

  it('refuses a checkpoint that is already quantized', async () => {
    const out = join(dir, 'q-out');
    await quantize(STORIES260K, { bits: 4, output: out });
    await expect(quantize(out, { bits: 4, output: join(dir, 'q-again') })).rejects.toThrow(/already quantized/);
  });

  it('names a model after its repository inside a Hugging Face cache snapshot', () => {
    expect(modelName('/c/hub/models--microsoft--Phi-3-mini-4k-instruct/snapshots/0a67737cc96d2554230f90338b163bc6380a2a85')).toBe('Phi-3-mini-4k-instruct');
    expect(modelName('/c/hub/models--microsoft--Phi-3-mini-4k-instruct/snapshots/0a67737c/')).toBe('Phi-3-mini-4k-instruct');
    expect(modelName('/work/models/stories260k')).toBe('stories260k');
  });
});
