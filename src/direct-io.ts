/**
 * Output written around the page cache (O_DIRECT). A quantized file is written once and not read again
 * by this process (fast verification measures the tensors before they leave memory), yet buffered
 * writes copy every byte into page-cache pages the kernel first has to find and zero, and then write
 * back from kernel threads: on the 2-core VM of docs/benchmarks.md that cost 90 ms of the process's CPU
 * for 0.29 GB (and up to 0.6 s of system time when the kernel had to reclaim pages), against 20-60 ms
 * written directly from two staging buffers, at the same wall time. The bytes are copied into
 * page-aligned staging buffers (the addon's largeBuffer, 2 MiB aligned); a full one is written while the
 * other fills, one write in flight. The last block is padded to the 4 KiB the kernel requires, and the
 * file truncated to its true size at the end.
 *
 * Where O_DIRECT is refused (no such flag, a filesystem without it: EINVAL at open or at the first
 * write) the same file continues through the page cache. QUANTKIT_DIRECT_IO=0 turns it off.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { addon } from './native.js';

/** Alignment of offsets, lengths and memory that O_DIRECT needs (the largest logical block in use). */
const DIRECT_ALIGN = 4096;
/** Each of the two staging buffers. */
const STAGE_BYTES = 8 * 2 ** 20;

const directIoWanted = (): boolean => process.env.QUANTKIT_DIRECT_IO !== '0' && typeof constants.O_DIRECT === 'number';

/** Staging buffers of finished files, for the next (a run writes its files one after another): two at most. */
const spare: Uint8Array[] = [];

function giveBack(buffers: Uint8Array[]): void {
  for (const b of buffers) if (spare.length < 2) spare.push(b);
}

function stagingBuffer(): Uint8Array | undefined {
  const reused = spare.pop();
  if (reused) return reused;
  try {
    const a = addon();
    const b = typeof a.largeBuffer === 'function' ? a.largeBuffer({ bytes: STAGE_BYTES }) : null;
    return b ? new Uint8Array(b) : undefined;
  } catch {
    return undefined;
  }
}

async function writeAll(fh: FileHandle, buf: Uint8Array, length: number, position: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const { bytesWritten } = await fh.write(buf, done, length - done, position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error('write wrote nothing'), { code: 'EIO' });
    done += bytesWritten;
  }
}

/**
 * Appends bytes to a file opened with O_DIRECT. `write` copies the caller's bytes before it returns
 * (the caller may reuse them); errors of a write in flight come out of the next `write` or of `finish`.
 */
export class DirectSink {
  private active = 0;
  private fill = 0;
  /** File offset of the next staging buffer written (a multiple of STAGE_BYTES until the tail). */
  private offset = 0;
  private inflight: Promise<void> | undefined;
  private failure: unknown;
  /** Set once O_DIRECT was refused at a write: the rest goes through this ordinary handle. */
  private buffered: FileHandle | undefined;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    private readonly stages: [Uint8Array, Uint8Array],
    /** Whether the staging buffers are the module's own, to be reused by the next file. */
    private readonly ownStages: boolean,
  ) {}

  /**
   * Creates `path` (exclusively) for direct writing, or returns undefined where that is not possible
   * (the caller then opens it as usual). `staging` gives the two staging buffers (tests give unaligned
   * ones, which the kernel refuses at the first write, to exercise the fallback).
   */
  static async create(path: string, staging: () => Uint8Array | undefined = stagingBuffer): Promise<{ sink: DirectSink; fh: FileHandle } | undefined> {
    if (!directIoWanted()) return undefined;
    const own = staging === stagingBuffer;
    const a = staging(), b = a && staging();
    if (!a || !b) {
      if (a && own) giveBack([a]);
      return undefined;
    }
    let fh: FileHandle;
    try {
      fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o644);
    } catch (e) {
      if (own) giveBack([a, b]);
      if ((e as NodeJS.ErrnoException).code === 'EINVAL') return undefined;  // the filesystem has no O_DIRECT
      throw e;
    }
    return { sink: new DirectSink(fh, path, [a, b], own), fh };
  }

  async write(data: Uint8Array): Promise<void> {
    this.rethrow();
    for (let off = 0; off < data.length; ) {
      const stage = this.stages[this.active]!;
      const n = Math.min(stage.length - this.fill, data.length - off);
      stage.set(data.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === stage.length) await this.submit(stage.length);
    }
  }

  /** Writes the staged tail (padded) and waits for every write; returns the bytes now in the file. */
  async finish(): Promise<number> {
    if (this.fill > 0) {
      const stage = this.stages[this.active]!;
      const padded = Math.ceil(this.fill / DIRECT_ALIGN) * DIRECT_ALIGN;
      stage.fill(0, this.fill, padded);
      await this.submit(padded);
    }
    await this.inflight;
    this.rethrow();
    return this.offset;
  }

  /** Waits for the write in flight (its error dropped) and gives the staging buffers back; once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.inflight;
    await this.buffered?.close().catch(() => undefined);
    this.buffered = undefined;
    if (this.ownStages) giveBack(this.stages);
  }

  private async submit(length: number): Promise<void> {
    await this.inflight;  // the other buffer is free once its write is done
    this.rethrow();
    const stage = this.stages[this.active]!, at = this.offset;
    this.offset += length;
    this.inflight = this.writeStage(stage, length, at).catch((e) => {
      this.failure ??= e;
    });
    this.active ^= 1;
    this.fill = 0;
  }

  private async writeStage(stage: Uint8Array, length: number, at: number): Promise<void> {
    if (!this.buffered) {
      try {
        return await writeAll(this.fh, stage, length, at);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        this.buffered = await open(this.path, 'r+');  // O_DIRECT refused at write time: go on through the page cache
      }
    }
    await writeAll(this.buffered, stage, length, at);
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
