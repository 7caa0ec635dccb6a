/**
 * The quantize pipeline's I/O: the large output files are written around the page cache (O_DIRECT,
 * direct-io.ts) where the filesystem allows, from staging buffers, the tail padded and truncated; other
 * files are flushed to disk progressively while they are written (writeback.ts), so that the fsync at
 * commit waits only for the tail; what lands on disk, its
 * checksum and the atomic rename are the same with or without it. Tensor buffers of 2 MiB and more come
 * from the addon, backed by 2 MiB pages (buffer-pool.ts): same bytes written with or without. Large
 * tensors are read in pieces at once (safetensors/reader.ts): same bytes, same errors.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { AtomicFile, takeChecksums, watchChecksums } from '../src/atomic-file.js';
import { DirectSink } from '../src/direct-io.js';
import { BufferPool } from '../src/buffer-pool.js';
import { addon } from '../src/native.js';
import { SafetensorsReader } from '../src/safetensors/reader.js';
import { SafetensorsWriter } from '../src/safetensors/writer.js';
import { QuantkitError } from '../src/errors.js';
import { randomBf16 } from '../scripts/random-bf16.js';
import { FLUSH_BYTES } from '../src/writeback.js';
import { CLI, STORIES260K, tempDir } from './helpers/models.js';

const dir = tempDir();
let n = 0;

/** Deterministic bytes that differ from slice to slice (a misplaced slice changes the file). */
function slice(i: number, bytes: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let k = 0; k < bytes; k += 4096) b[k] = (i * 31 + k / 4096) & 0xff;
  b[bytes - 1] = i;
  return b;
}

async function writeSlices(path: string, count: number, bytes: number, direct = false): Promise<{ file: AtomicFile; expected: Buffer }> {
  const file = await AtomicFile.create(path, { direct });
  const parts: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const s = slice(i, bytes);
    parts.push(s);
    await file.write(s);
  }
  return { file, expected: Buffer.concat(parts) };
}

describe('checksums of committed files', () => {
  it('are kept only for a watched directory, until taken: files nobody asked about leave nothing behind', async () => {
    const sub = join(dir, `watch${n++}`);
    mkdirSync(sub);
    const commitOne = async (name: string) => {
      const f = await AtomicFile.create(join(sub, name));
      await f.write(new Uint8Array(1000).fill(3));
      await f.commit();
    };
    await commitOne('before.bin');  // not watched yet: not recorded
    const early = await AtomicFile.create(join(sub, 'created-before.bin'));  // created unwatched: no checksum
    watchChecksums(sub);
    await early.write(new Uint8Array(10));
    await early.commit();
    await commitOne('during.bin');
    const taken = takeChecksums(sub);
    expect([...taken.keys()]).toEqual([join(sub, 'during.bin')]);
    expect(taken.get(join(sub, 'during.bin'))).toEqual({ bytes: 1000, crc32: crc32(new Uint8Array(1000).fill(3)) });
    await commitOne('after.bin');  // taking stopped the watch
    watchChecksums(sub);
    expect(takeChecksums(sub).size).toBe(0);
  });
});

describe('progressive flushing of large output files', () => {
  const saved = process.env.QUANTKIT_PROGRESSIVE_FLUSH;
  afterEach(() => {
    if (saved === undefined) delete process.env.QUANTKIT_PROGRESSIVE_FLUSH;
    else process.env.QUANTKIT_PROGRESSIVE_FLUSH = saved;
  });

  it('flushes in the background while writing; the committed file and its CRC-32 are the bytes written', async () => {
    const sub = join(dir, `flush${n++}`);
    mkdirSync(sub);
    watchChecksums(sub);
    const { file, expected } = await writeSlices(join(sub, 'big.bin'), 11, 7 * 2 ** 20 + 13); // > 2 * FLUSH_BYTES, odd sizes
    expect(file.flushes).toBeGreaterThanOrEqual(1);
    await file.commit(expected.length);
    expect(readFileSync(join(sub, 'big.bin')).equals(expected)).toBe(true);
    expect(takeChecksums(sub).get(join(sub, 'big.bin'))).toEqual({ bytes: expected.length, crc32: crc32(expected) });
    expect(readdirSync(sub)).toEqual(['big.bin']);
  });

  it('QUANTKIT_PROGRESSIVE_FLUSH=0 leaves all of it to the final fsync, with the same bytes', async () => {
    process.env.QUANTKIT_PROGRESSIVE_FLUSH = '0';
    const sub = join(dir, `noflush${n++}`);
    mkdirSync(sub);
    const { file, expected } = await writeSlices(join(sub, 'big.bin'), 5, FLUSH_BYTES / 2 + 1);
    expect(file.flushes).toBe(0);
    await file.commit(expected.length);
    expect(readFileSync(join(sub, 'big.bin')).equals(expected)).toBe(true);
  });

  it('a file small enough is not flushed before commit', async () => {
    const sub = join(dir, `small${n++}`);
    mkdirSync(sub);
    const { file } = await writeSlices(join(sub, 'small.bin'), 3, 2 ** 20);
    expect(file.flushes).toBe(0);
    await file.commit();
  });

  it('aborting while a flush runs leaves nothing behind', async () => {
    const sub = join(dir, `abort${n++}`);
    mkdirSync(sub);
    const { file } = await writeSlices(join(sub, 'big.bin'), 3, FLUSH_BYTES / 2 + 1);
    expect(file.flushes).toBe(1);
    await file.abort();
    expect(readdirSync(sub)).toEqual([]);
    expect(existsSync(join(sub, 'big.bin'))).toBe(false);
  });
});

describe('direct (O_DIRECT) output files', () => {
  const saved = process.env.QUANTKIT_DIRECT_IO;
  afterEach(() => {
    if (saved === undefined) delete process.env.QUANTKIT_DIRECT_IO;
    else process.env.QUANTKIT_DIRECT_IO = saved;
  });

  // Sizes around the two 8 MiB staging buffers and the 4 KiB alignment: nothing, less than a block, one
  // block exactly, many odd pieces through several buffer turns, a staging buffer exactly.
  for (const [count, bytes] of [[0, 1], [1, 100], [1, 4096], [9, 3 * 2 ** 20 + 4097], [2, 4 * 2 ** 20]] as const)
    it(`${count} x ${bytes} bytes: the committed file, its size and CRC-32 are the bytes written, nothing else left`, async () => {
      const sub = join(dir, `direct${n++}`);
      mkdirSync(sub);
      watchChecksums(sub);
      const { file, expected } = await writeSlices(join(sub, 'out.bin'), count, bytes, true);
      // ext4 and xfs take O_DIRECT; a filesystem that refuses it gets the same file through the page cache.
      if (!file.writesDirect) console.log(`direct I/O not available under ${sub}: written through the page cache`);
      expect(file.flushes).toBe(0);
      await file.commit(expected.length);
      expect(statSync(join(sub, 'out.bin')).size).toBe(expected.length);
      expect(readFileSync(join(sub, 'out.bin')).equals(expected)).toBe(true);
      expect(takeChecksums(sub).get(join(sub, 'out.bin'))).toEqual({ bytes: expected.length, crc32: crc32(expected) });
      expect(readdirSync(sub)).toEqual(['out.bin']);
    });

  it('only where asked; QUANTKIT_DIRECT_IO=0 turns it off', async () => {
    const sub = join(dir, `directenv${n++}`);
    mkdirSync(sub);
    const on = await AtomicFile.create(join(sub, 'a.bin'), { direct: true });
    const small = await AtomicFile.create(join(sub, 'b.bin'));
    process.env.QUANTKIT_DIRECT_IO = '0';
    const off = await AtomicFile.create(join(sub, 'c.bin'), { direct: true });
    expect(small.writesDirect).toBe(false);
    expect(off.writesDirect).toBe(false);
    console.log(`direct I/O under ${sub}: ${on.writesDirect ? 'yes' : 'no (the filesystem refuses O_DIRECT)'}`);
    for (const f of [on, small, off]) await f.abort();
    expect(readdirSync(sub)).toEqual([]);
  });

  it('a write the kernel refuses (EINVAL) goes on through the page cache, with the same bytes', async () => {
    const sub = join(dir, `directfallback${n++}`);
    mkdirSync(sub);
    const path = join(sub, 'out.bin');
    // Staging buffers one byte off a page: ext4 and xfs refuse O_DIRECT writes from them with EINVAL.
    const unaligned = () => new Uint8Array(new ArrayBuffer(8 * 2 ** 20 + 1), 1);
    const made = await DirectSink.create(path, unaligned);
    if (!made) return void console.log(`direct I/O not available under ${sub}: nothing to fall back from`);
    const parts = [slice(1, 5 * 2 ** 20 + 3), slice(2, 9 * 2 ** 20 + 7), slice(3, 17)];
    for (const p of parts) await made.sink.write(p);
    const onDisk = await made.sink.finish();
    const expected = Buffer.concat(parts);
    await made.fh.truncate(expected.length);
    await made.sink.close();
    await made.fh.close();
    expect(onDisk).toBeGreaterThanOrEqual(expected.length);
    expect(readFileSync(path).equals(expected)).toBe(true);
  });

  it('aborting with a write in flight leaves nothing behind', async () => {
    const sub = join(dir, `directabort${n++}`);
    mkdirSync(sub);
    const { file } = await writeSlices(join(sub, 'big.bin'), 3, 8 * 2 ** 20 + 1, true);
    await file.abort();
    expect(readdirSync(sub)).toEqual([]);
  });
});

describe('large tensor buffers (2 MiB pages)', () => {
  it('the addon maps zero-filled buffers of the size asked, separate from each other', () => {
    const a = addon().largeBuffer({ bytes: 3 * 2 ** 20 + 5 })!;
    const b = addon().largeBuffer({ bytes: 2 ** 21 })!;
    expect(a.byteLength).toBe(3 * 2 ** 20 + 5);
    expect(b.byteLength).toBe(2 ** 21);
    const va = new Uint8Array(a), vb = new Uint8Array(b);
    expect(va.every((x) => x === 0)).toBe(true);
    va.fill(7);
    expect(vb.every((x) => x === 0)).toBe(true);
    expect(va[va.length - 1]).toBe(7);
  });

  it('the pool hands out and reuses them for tensors of 2 MiB and more; small ones are plain buffers', () => {
    const pool = new BufferPool();
    const big = pool.acquire(5 * 2 ** 20 + 1);
    expect(big.length).toBe(5 * 2 ** 20 + 1);
    expect(big.buffer.byteLength).toBe(6 * 2 ** 20); // rounded up to whole MiB so that similar sizes share
    big.fill(1);
    pool.release(big);
    const again = pool.acquire(5 * 2 ** 20);
    expect(again.buffer).toBe(big.buffer);
    expect(pool.acquire(1000).buffer.byteLength).toBe(1000);
  });

  it('a quantize run writes the same bytes with QUANTKIT_LARGE_PAGES=0 (plain buffers) and QUANTKIT_DIRECT_IO=0 (through the page cache)', async () => {
    // One 4 MiB bf16 matrix: its read buffer and output come from the large-page pool.
    const model = join(dir, `big-model${n++}`);
    mkdirSync(model);
    const writer = await SafetensorsWriter.create(join(model, 'model.safetensors'), [{ name: 'w.weight', dtype: 'BF16', shape: [1024, 2048] }]);
    await writer.write('w.weight', randomBf16(1024 * 2048));
    await writer.finish();
    const run = (env: Record<string, string>, out: string) =>
      spawnSync(process.execPath, [CLI, 'quantize', join(model, 'model.safetensors'), '--bits', '4', '--method', 'rtn', '-o', out, '-q'], { env: { ...process.env, ...env }, encoding: 'utf8' });
    const a = join(dir, `pages${n++}`), b = join(dir, `plain${n++}`), c = join(dir, `cached${n++}`);
    const ra = run({}, a), rb = run({ QUANTKIT_LARGE_PAGES: '0' }, b), rc = run({ QUANTKIT_DIRECT_IO: '0' }, c);
    for (const r of [ra, rb, rc]) expect(r.status, r.stderr).toBe(0);
    const weights = (d: string) => readFileSync(join(d, readdirSync(d).find((f) => f.endsWith('.safetensors'))!));
    expect(weights(a).length).toBeGreaterThan(2 ** 20);
    expect(weights(a).equals(weights(b))).toBe(true);
    expect(weights(a).equals(weights(c))).toBe(true);
  });
});

describe('reading large tensors in parallel pieces', () => {
  it('gives the bytes of the file; a file truncated after it was opened is an error naming file and tensor', async () => {
    const model = join(dir, `pieces${n++}`);
    mkdirSync(model);
    const path = join(model, 'model.safetensors');
    const values = randomBf16(3 * 2 ** 21 + 7); // 12 MiB + 14 bytes: four pieces of unequal length
    const writer = await SafetensorsWriter.create(path, [{ name: 'small', dtype: 'BF16', shape: [5] }, { name: 'big', dtype: 'BF16', shape: [values.length / 2] }]);
    await writer.write('small', new Uint8Array(10).fill(3));
    await writer.write('big', values);
    await writer.finish();
    const reader = await SafetensorsReader.open(path);
    try {
      expect(Buffer.from(await reader.read(reader.tensor('big'))).equals(Buffer.from(values))).toBe(true);
      expect([...(await reader.read(reader.tensor('small')))]).toEqual(new Array(10).fill(3));
      truncateSync(path, statSync(path).size - 1000);
      const err = await reader.read(reader.tensor('big')).catch((e) => e);
      expect(err).toBeInstanceOf(QuantkitError);
      expect(err.code).toBe('ERR_SAFETENSORS_DATA');
      expect(err.file).toBe(path);
      expect(err.tensor).toBe('big');
      expect(err.message).toMatch(/unexpected end of file/);
    } finally {
      await reader.close();
    }
  });
});
