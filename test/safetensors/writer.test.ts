/** The streaming writer: header layout, exact size prediction, ordering, atomic rename. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsReader } from '../../src/safetensors/reader.js';
import { SafetensorsWriter, predictSafetensorsSize, type TensorEntry } from '../../src/safetensors/writer.js';
import { tempDir } from '../helpers/models.js';

const dir = tempDir();

describe('SafetensorsWriter', () => {
  const entries: TensorEntry[] = [
    { name: 'w', dtype: 'BF16', shape: [3, 5] },
    { name: 'empty', dtype: 'F32', shape: [0] },
    { name: 'b', dtype: 'I32', shape: [7] },
  ];
  const data = { w: new Uint8Array(30).map((_, i) => i), b: new Uint8Array(28).map((_, i) => 200 - i) };

  it('writes a file the reader accepts, of exactly the predicted size, header padded to 8', async () => {
    const p = join(dir, 'a.safetensors');
    const w = await SafetensorsWriter.create(p, entries, { format: 'pt', note: 'x' });
    expect(existsSync(p)).toBe(false); // nothing under the final name until finish()
    await w.write('w', data.w.subarray(0, 10));
    await w.write('w', data.w.subarray(10));
    await w.write('b', data.b);
    await w.finish();
    expect(statSync(p).size).toBe(predictSafetensorsSize(entries, { format: 'pt', note: 'x' }));
    const n = Number(readFileSync(p).readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const r = await SafetensorsReader.open(p);
    expect(r.header.metadata).toEqual({ format: 'pt', note: 'x' });
    expect(Buffer.from(await r.read(r.tensor('w')))).toEqual(Buffer.from(data.w));
    expect(Buffer.from(await r.read(r.tensor('b')))).toEqual(Buffer.from(data.b));
    await r.close();
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('refuses out-of-order, oversized and missing tensors, leaving no file behind', async () => {
    const p = join(dir, 'b.safetensors');
    let w = await SafetensorsWriter.create(p, entries);
    await expect(w.write('b', data.b)).rejects.toThrow(/out of order/);
    await w.abort();
    w = await SafetensorsWriter.create(p, entries);
    await expect(w.write('w', new Uint8Array(31))).rejects.toThrow(/more than its 30 planned bytes/);
    await w.abort();
    w = await SafetensorsWriter.create(p, entries);
    await w.write('w', data.w);
    await expect(w.finish()).rejects.toThrow(/'b' was never written/);
    expect(existsSync(p)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('b.safetensors'))).toEqual([]);
  });

  it('rejects duplicate names', async () => {
    await expect(SafetensorsWriter.create(join(dir, 'c.safetensors'), [entries[0]!, entries[0]!])).rejects.toThrow(/duplicate/);
  });
});

describe('tensors over 2 GiB', () => {
  it('are written and read in chunks (Node refuses one read or write of 2 GiB or more)', async () => {
    const p = join(dir, 'big.safetensors');
    const n = 2 ** 31 + 4096;
    const entries: TensorEntry[] = [{ name: 'big', dtype: 'U8', shape: [n] }];
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i += 1 << 20) data[i] = (i >> 20) & 0xff;
    data[n - 1] = 0x5a;
    const w = await SafetensorsWriter.create(p, entries);
    await w.write('big', data);
    await w.finish();
    const r = await SafetensorsReader.open(p);
    const back = await r.read(r.tensor('big'), data.fill(0));
    await r.close();
    expect(back[n - 1]).toBe(0x5a);
    expect(back[5 << 20]).toBe(5);
    expect(statSync(p).size).toBe(predictSafetensorsSize(entries));
  }, 120_000);
});
