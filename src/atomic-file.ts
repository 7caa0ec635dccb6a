/**
 * A file written sequentially under a temporary name and renamed into place only when complete,
 * so that a crash or an error never leaves a partial file under the final name.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { crc32 } from './crc32.js';
import { QuantkitError, ioError } from './errors.js';
import { MAX_IO_CHUNK } from './safetensors/reader.js';
import { FLUSH_BYTES, flushInBackground, progressiveFlush } from './writeback.js';
import { DirectSink } from './direct-io.js';

export function temporaryName(path: string, tag = 'partial'): string {
  return `${path}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * CRC-32 of the files an AtomicFile created and committed while their directory was watched, by final
 * path, computed from the bytes as they were handed to write(): quantize watches its output directory
 * before any file is created and takes them for the report, and `--verify full` compares them with the
 * files read back (takeChecksums). Other files (reports, other commands, a library user's own writes)
 * are neither checksummed nor recorded, so nothing is computed or kept that nobody takes.
 */
const committed = new Map<string, { bytes: number; crc32: number }>();
const watched = new Set<string>();

/** Records the checksums of files created under `dir` from now on and committed before takeChecksums(dir). */
export function watchChecksums(dir: string): void {
  watched.add(dir);
}

/** The checksums of the files committed under `dir` (removed from the record), and stops watching it. */
export function takeChecksums(dir: string): Map<string, { bytes: number; crc32: number }> {
  watched.delete(dir);
  const out = new Map<string, { bytes: number; crc32: number }>();
  for (const [path, c] of committed)
    if (path.startsWith(dir + '/')) {
      out.set(path, c);
      committed.delete(path);
    }
  return out;
}

function isWatched(path: string): boolean {
  for (const d of watched) if (path.startsWith(d + '/')) return true;
  return false;
}

export class AtomicFile {
  private position = 0;
  private closed = false;
  private crc = 0;
  /** Under a watched directory when created: its CRC-32 is computed as it is written (others need none). */
  private readonly checksummed: boolean;
  /** Bytes up to here have been handed to a background flush (writeback.ts); flushes run one at a time. */
  private flushedTo = 0;
  private flushing: Promise<void> | undefined;
  private readonly progressive = progressiveFlush();
  /** Background flushes started (tests check that large files get them). */
  flushes = 0;

  private constructor(
    readonly path: string,
    readonly tempPath: string,
    private fh: FileHandle,
    /** Present when the file is written around the page cache (direct-io.ts). */
    private readonly direct?: DirectSink,
  ) {
    this.checksummed = isWatched(path);
  }

  /**
   * `direct`: a large output written once (a GGUF, safetensors or ONNX data file) goes around the page
   * cache where the system allows (direct-io.ts); small files are written as usual.
   */
  static async create(path: string, o: { direct?: boolean } = {}): Promise<AtomicFile> {
    const tempPath = temporaryName(path);
    try {
      const d = o.direct ? await DirectSink.create(tempPath) : undefined;
      return d ? new AtomicFile(path, tempPath, d.fh, d.sink) : new AtomicFile(path, tempPath, await open(tempPath, 'wx'));
    } catch (e) {
      throw ioError('ERR_IO', path, e, 'cannot create');
    }
  }

  /** Whether the bytes go around the page cache (O_DIRECT). */
  get writesDirect(): boolean {
    return this.direct !== undefined;
  }

  get bytesWritten(): number {
    return this.position;
  }

  async write(data: Uint8Array): Promise<void> {
    try {
      if (this.direct) await this.direct.write(data);
      else
        for (let done = 0; done < data.length; ) {
          const { bytesWritten } = await this.fh.write(data, done, Math.min(MAX_IO_CHUNK, data.length - done), this.position + done);
          done += bytesWritten;
        }
    } catch (e) {
      throw ioError('ERR_IO', this.path, e, 'cannot write');
    }
    this.position += data.length;
    if (this.checksummed) this.crc = crc32(data, this.crc);
    if (this.progressive && !this.direct && !this.flushing && this.position - this.flushedTo >= FLUSH_BYTES) this.flushSoFar();
  }

  /** Flushes what has been written so far in the background (writeback.ts); the next starts once it is done. */
  private flushSoFar(): void {
    this.flushedTo = this.position;
    this.flushes++;
    this.flushing = flushInBackground(this.fh).then(() => {
      this.flushing = undefined;
    });
  }

  /** Flushes, closes and renames; after this the file exists under its final name, complete. */
  async commit(expectedSize?: number): Promise<void> {
    if (expectedSize !== undefined && expectedSize !== this.position) {
      await this.abort();
      throw new QuantkitError('ERR_VERIFY', `wrote ${this.position} bytes but the plan predicted ${expectedSize}`, { file: this.path });
    }
    try {
      if (this.direct) {
        const onDisk = await this.direct.finish();
        if (onDisk !== this.position) await this.fh.truncate(this.position);  // the tail's padding
        await this.direct.close();
      }
      await this.flushing;
      await this.fh.sync();
      await this.fh.close();
      this.closed = true;
      await rename(this.tempPath, this.path);
      if (this.checksummed && isWatched(this.path)) committed.set(this.path, { bytes: this.position, crc32: this.crc });
    } catch (e) {
      await this.abort();
      throw ioError('ERR_IO', this.path, e, 'cannot finish writing');
    }
  }

  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.flushing; // never rejects; the file must stay open while it runs
      await this.direct?.close();
      await this.fh.close().catch(() => undefined);
    }
    await rm(this.tempPath, { force: true }).catch(() => undefined);
  }
}

/** Writes a small file atomically in one go. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const f = await AtomicFile.create(path);
  try {
    await f.write(typeof data === 'string' ? new TextEncoder().encode(data) : data);
  } catch (e) {
    await f.abort();
    throw e;
  }
  await f.commit();
}
