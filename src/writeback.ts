/**
 * Progressive flushing of large output files. Every FLUSH_BYTES appended, the file's data is flushed
 * (fdatasync on libuv's thread pool, one request at a time, never awaited by the writer), so the disk
 * works while the rest of the file is being computed and the single fsync at commit waits only for the
 * tail. Why fdatasync and not sync_file_range(SYNC_FILE_RANGE_WRITE): in the VM these figures come from,
 * starting writeback moved the data to the virtual disk's host cache only, and the final fsync's cache
 * flush still cost 0.27 s for 512 MiB; flushing every 64 MiB took 40-50 ms each off the critical path and
 * left the final fsync at under 5 ms (docs/benchmarks.md). QUANTKIT_PROGRESSIVE_FLUSH=0 turns it off.
 */
import type { FileHandle } from 'node:fs/promises';

export const FLUSH_BYTES = 32 * 2 ** 20;

export const progressiveFlush = (): boolean => process.env.QUANTKIT_PROGRESSIVE_FLUSH !== '0';

/** Flushes `fh`'s data written so far; never rejects (the fsync at commit reports real I/O errors). */
export async function flushInBackground(fh: FileHandle): Promise<void> {
  await fh.datasync().catch(() => undefined);
}
