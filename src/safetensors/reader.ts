/** A safetensors file opened for positioned reads, tensor by tensor; the file is never loaded whole. */
import { open, type FileHandle } from 'node:fs/promises';
import { QuantkitError, ioError } from '../errors.js';
import { type SafetensorsHeader, type TensorInfo, checkHeaderLength, parseHeader } from './header.js';

/** Largest single read or write: Node refuses lengths of 2 GiB and more in one call. */
export const MAX_IO_CHUNK = 1 << 30;

/** Reads exactly `length` bytes at `position`, or fails naming the file: short reads mean truncation. */
export async function readExactly(fh: FileHandle, target: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await fh.read(target, done, Math.min(MAX_IO_CHUNK, target.length - done), position + done);
    if (bytesRead === 0)
      throw new QuantkitError('ERR_SAFETENSORS_DATA', `unexpected end of file at byte ${position + done} (file truncated or changed while reading)`, { file });
    done += bytesRead;
  }
}

/** Reads of this size and more are split into pieces read at once, on several of libuv's threads. */
const PARALLEL_READ = 8 * 2 ** 20;
const READ_PIECES = 4;

/**
 * readExactly, split into READ_PIECES positioned reads that run together for a large target: a read from
 * the page cache is a copy on one thread, slower than the kernels quantize on two (1 GB: ~0.25 s of
 * copying), so one read at a time left a core idle while the next tensor arrived.
 */
export async function readInParallel(fh: FileHandle, target: Uint8Array, position: number, file: string): Promise<void> {
  if (target.length < PARALLEL_READ) return readExactly(fh, target, position, file);
  const piece = Math.ceil(target.length / READ_PIECES / 4096) * 4096;
  const reads: Promise<void>[] = [];
  for (let at = 0; at < target.length; at += piece) reads.push(readExactly(fh, target.subarray(at, Math.min(target.length, at + piece)), position + at, file));
  const results = await Promise.allSettled(reads);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

export class SafetensorsReader {
  private constructor(
    readonly path: string,
    readonly header: SafetensorsHeader,
    readonly fileSize: number,
    private fh: FileHandle,
  ) {}

  static async open(path: string): Promise<SafetensorsReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw ioError('ERR_CHECKPOINT', path, e);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new QuantkitError('ERR_CHECKPOINT', 'not a regular file', { file: path });
      const prefix = new Uint8Array(8);
      if (st.size < 8) checkHeaderLength(prefix.subarray(0, 0), st.size, path);
      await readExactly(fh, prefix, 0, path);
      const n = checkHeaderLength(prefix, st.size, path);
      const json = new Uint8Array(n);
      await readExactly(fh, json, 8, path);
      return new SafetensorsReader(path, parseHeader(json, st.size, path), st.size, fh);
    } catch (e) {
      await fh.close();
      if (e instanceof QuantkitError) throw e;
      throw ioError('ERR_CHECKPOINT', path, e);
    }
  }

  get tensors(): readonly TensorInfo[] {
    return this.header.tensors;
  }

  tensor(name: string): TensorInfo {
    const t = this.header.byName.get(name);
    if (!t) throw new QuantkitError('ERR_CHECKPOINT', 'no such tensor in this file', { file: this.path, tensor: name });
    return t;
  }

  /** Reads one tensor's bytes (into `target` if given, which must be exactly its size). */
  async read(t: TensorInfo, target?: Uint8Array): Promise<Uint8Array> {
    const size = t.end - t.begin;
    const buf = target ?? new Uint8Array(size);
    if (buf.length !== size) throw new RangeError(`target holds ${buf.length} bytes, tensor ${t.name} has ${size}`);
    try {
      await readInParallel(this.fh, buf, this.header.dataStart + t.begin, this.path);
    } catch (e) {
      if (e instanceof QuantkitError) throw new QuantkitError(e.code, e.message.replace(`${this.path}: `, ''), { file: this.path, tensor: t.name });
      throw ioError('ERR_SAFETENSORS_DATA', this.path, e);
    }
    return buf;
  }

  /** Where a tensor's bytes are, for code that reads them itself (the addon's row sums): the open file and the byte offset. */
  location(t: TensorInfo): { fd: number; offset: number } {
    return { fd: this.fh.fd, offset: this.header.dataStart + t.begin };
  }

  /** Reads `target.length` bytes of a tensor starting `offset` bytes into its data. */
  async readRange(t: TensorInfo, offset: number, target: Uint8Array): Promise<Uint8Array> {
    if (offset < 0 || offset + target.length > t.end - t.begin) throw new RangeError(`range [${offset}, ${offset + target.length}) is outside tensor ${t.name}`);
    await readExactly(this.fh, target, this.header.dataStart + t.begin + offset, this.path);
    return target;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
