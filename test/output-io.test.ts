/**
 * The output side of the quantize pipeline's I/O: large files are flushed to disk progressively while
 * they are written (writeback.ts), so that the fsync at commit waits only for the tail; what lands on
 * disk, its checksum and the atomic rename are the same with or without it.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { AtomicFile, takeChecksums } from '../src/atomic-file.js';
import { FLUSH_BYTES } from '../src/writeback.js';
import { tempDir } from './helpers/models.js';

const dir = tempDir();
let n = 0;

/** Deterministic bytes that differ from slice to slice (a misplaced slice changes the file). */
function slice(i: number, bytes: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let k = 0; k < bytes; k += 4096) b[k] = (i * 31 + k / 4096) & 0xff;
  b[bytes - 1] = i;
  return b;
}

async function writeSlices(path: string, count: number, bytes: number): Promise<{ file: AtomicFile; expected: Buffer }> {
  const file = await AtomicFile.create(path);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const s = slice(i, bytes);
    parts.push(s);
    await file.write(s);
  }
  return { file, expected: Buffer.concat(parts) };
}

describe('progressive flushing of large output files', () => {
  const saved = process.env.QUANTKIT_PROGRESSIVE_FLUSH;
  afterEach(() => {
    if (saved === undefined) delete process.env.QUANTKIT_PROGRESSIVE_FLUSH;
    else process.env.QUANTKIT_PROGRESSIVE_FLUSH = saved;
  });

  it('flushes in the background while writing; the committed file and its CRC-32 are the bytes written', async () => {
    const sub = join(dir, `flush${n++}`);
    mkdirSync(sub);
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
