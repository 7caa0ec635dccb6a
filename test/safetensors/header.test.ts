/** The reader's validation, rule by rule, against hand-made files (the reference crate's checks). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QuantkitError } from '../../src/errors.js';
import { SafetensorsReader } from '../../src/safetensors/reader.js';
import { STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';
import { headerFor, rawSafetensors, writeRaw } from '../helpers/fixtures.js';

const dir = tempDir();
let n = 0;
const file = () => join(dir, `f${n++}.safetensors`);

async function openError(path: string): Promise<QuantkitError> {
  try {
    const r = await SafetensorsReader.open(path);
    await r.close();
  } catch (e) {
    expect(e).toBeInstanceOf(QuantkitError);
    return e as QuantkitError;
  }
  throw new Error(`${path} was accepted`);
}

const ok = { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };

describe('SafetensorsReader accepts valid files', () => {
  it('reads both bundled models with the expected tensors', async () => {
    const r = await SafetensorsReader.open(join(STORIES260K, 'model.safetensors'));
    expect(r.tensors).toHaveLength(47);
    expect(r.tensor('model.embed_tokens.weight')).toMatchObject({ dtype: 'BF16', shape: [512, 64] });
    expect(r.header.metadata).toEqual({ format: 'pt' });
    const bytes = await r.read(r.tensor('model.norm.weight'));
    expect(bytes.length).toBe(128);
    await r.close();
    const t = await SafetensorsReader.open(join(TINYSTORIES656K, 'model.safetensors'));
    expect(t.header.metadata?.['model.embed_tokens.weight']).toBe('lm_head.weight');
    await t.close();
  });

  it('accepts zero-size tensors, every dtype, and entries listed out of offset order', async () => {
    const p = file();
    const dtypes = ['BOOL', 'U8', 'I8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'F16', 'BF16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2'];
    const sizes = [1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 2, 4, 8, 1, 1];
    const { header, dataBytes } = headerFor([...dtypes.map((d, i) => ({ name: `t_${d}`, dtype: d, shape: [3], bytes: 3 * sizes[i]! })), { name: 'empty', dtype: 'F32', shape: [0, 5], bytes: 0 }]);
    const reversed = Object.fromEntries(Object.entries(header).reverse());
    writeRaw(p, reversed, dataBytes);
    const r = await SafetensorsReader.open(p);
    expect(r.tensors.map((t) => t.name)).toContain('empty');
    expect(r.tensors[0]!.name).toBe('t_BOOL');
    await r.close();
  });
});

describe('SafetensorsReader rejects malformed files with the file and tensor named', () => {
  const cases: [string, () => string, RegExp, string?][] = [
    ['a 0-byte file', () => (writeFileSync(file(), ''), join(dir, `f${n - 1}.safetensors`)), /too short/],
    ['a file shorter than its header', () => { const p = file(); writeFileSync(p, rawSafetensors('{}', 0, 1000n)); return p; }, /runs past the end/],
    ['a header length of 2^63', () => { const p = file(); writeFileSync(p, rawSafetensors('{}', 0, 2n ** 63n)); return p; }, /exceeds/],
    ['a header over 100 MB', () => { const p = file(); writeFileSync(p, rawSafetensors('{}', 0, 100_000_001n)); return p; }, /exceeds the 100000000-byte limit/],
    ['non-UTF-8 header', () => { const p = file(); writeFileSync(p, rawSafetensors(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))); return p; }, /not valid UTF-8/],
    ['invalid JSON', () => writeRaw(file(), '{"a": '), /not valid JSON/],
    ['a JSON array', () => writeRaw(file(), '[1,2]'), /not an object/],
    ['duplicate tensor names', () => writeRaw(file(), '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4), /duplicate key 'a'/],
    ['an unknown dtype', () => writeRaw(file(), { a: { dtype: 'F12', shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype "F12"/, 'a'],
    ['a negative dimension', () => writeRaw(file(), { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /non-negative integers/, 'a'],
    ['a fractional dimension', () => writeRaw(file(), { a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 6] } }, 6), /non-negative integers/, 'a'],
    ['a shape whose product overflows', () => writeRaw(file(), { a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, 4), /overflows/, 'a'],
    ['a huge dimension', () => writeRaw(file(), '{"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}}', 4), /non-negative integers/, 'a'],
    ['shape and byte span disagreeing', () => writeRaw(file(), { a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, 16), /needs 12 bytes but data_offsets span 16/, 'a'],
    ['offsets ending before they begin', () => writeRaw(file(), { a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, 8), /end before they begin/, 'a'],
    ['overlapping tensors', () => writeRaw(file(), { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /overlap/, 'b'],
    ['a hole between tensors', () => writeRaw(file(), { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, 12), /hole/, 'b'],
    ['data not starting at 0', () => writeRaw(file(), { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /hole/, 'a'],
    ['trailing bytes after the data', () => writeRaw(file(), ok, 20), /trailing bytes/],
    ['a truncated data section', () => writeRaw(file(), ok, 10), /truncated/],
    ['non-string __metadata__ values', () => writeRaw(file(), { __metadata__: { format: 1 }, ...ok }, 16), /__metadata__ value for 'format' is not a string/],
    ['__metadata__ that is not an object', () => writeRaw(file(), { __metadata__: 'pt', ...ok }, 16), /__metadata__ is not an object/],
    ['data_offsets that are not a pair', () => writeRaw(file(), { a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), /not a pair/, 'a'],
  ];
  for (const [label, make, msg, tensor] of cases) {
    it(label, async () => {
      const p = make();
      const e = await openError(p);
      expect(e.code).toMatch(/ERR_SAFETENSORS_HEADER|ERR_CHECKPOINT/);
      expect(e.message).toMatch(msg);
      expect(e.message.startsWith(p)).toBe(true);
      if (tensor) expect(e.tensor).toBe(tensor);
    });
  }

  it('a directory where a file is expected', async () => {
    const e = await openError(dir);
    expect(e.message).toMatch(/not a regular file|EISDIR/);
  });

  it('a missing file', async () => {
    const e = await openError(join(dir, 'nope.safetensors'));
    expect(e.message).toMatch(/ENOENT/);
  });
});
