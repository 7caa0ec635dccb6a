/**
 * Reusable byte buffers for tensor data. A fresh multi-megabyte ArrayBuffer costs page faults and
 * zeroing on every tensor (reading a 7.6 GB checkpoint into fresh buffers took 4.7x longer than into
 * reused ones here), and V8 frees them only at its next GC, so resident memory grows with the model.
 * Buffers are handed out by size and returned once their bytes have been written or checked; contents
 * are not cleared (every user overwrites what it asks for).
 */
import { addon } from './native.js';

/** From this size on, buffers come from the addon, backed by 2 MiB pages where the system allows. */
const LARGE = 2 * 2 ** 20;

let native: ((bytes: number) => ArrayBuffer | null) | null | undefined;

/**
 * A buffer of 2 MiB pages (addon().largeBuffer): reading 1 GB into a reused buffer and passing over it
 * took half the CPU time with them than with 4 KiB pages here (page faults and TLB misses). A plain
 * ArrayBuffer without the addon or where it fails. QUANTKIT_LARGE_PAGES=0 turns it off.
 */
function largeBuffer(bytes: number): ArrayBuffer {
  if (native === undefined) {
    try {
      const a = addon();
      // An addon built before largeBuffer existed (QUANTKIT_ADDON, an old prebuild) has none.
      native = process.env.QUANTKIT_LARGE_PAGES === '0' || typeof a.largeBuffer !== 'function' ? null : (b: number) => a.largeBuffer({ bytes: b });
    } catch {
      native = null;
    }
  }
  return native?.(bytes) ?? new ArrayBuffer(bytes);
}

export class BufferPool {
  private free: ArrayBuffer[] = [];
  private pooledBytes = 0;

  /** Buffers kept for reuse are capped at this many bytes in total. */
  constructor(private readonly maxPooledBytes = 512 * 2 ** 20) {}

  acquire(bytes: number): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i]!;
      if (b.byteLength >= bytes && (best < 0 || b.byteLength < this.free[best]!.byteLength)) best = i;
    }
    if (best >= 0) {
      const [b] = this.free.splice(best, 1);
      this.pooledBytes -= b!.byteLength;
      return new Uint8Array(b!, 0, bytes);
    }
    // Round up so that tensors of similar sizes share buffers.
    const capacity = bytes <= 1 << 20 ? bytes : Math.ceil(bytes / (1 << 20)) * (1 << 20);
    // 2 MiB pages pay where a buffer is used again; one too large for the pool to keep is used once,
    // and fresh 2 MiB pages cost more than 4 KiB ones in a VM that hands free memory back to its host
    // (a 501 MiB embedding buffer: 2.1 s of system time against 1.0 s for the whole run, docs/benchmarks.md).
    const reusable = capacity * 4 <= this.maxPooledBytes;
    return new Uint8Array(capacity >= LARGE && reusable ? largeBuffer(capacity) : new ArrayBuffer(capacity), 0, bytes);
  }

  release(...views: (ArrayBufferView | undefined)[]): void {
    for (const v of views) {
      if (!v || !(v.buffer instanceof ArrayBuffer) || v.buffer.byteLength < 1 << 16) continue;
      if (this.free.includes(v.buffer)) continue;
      if (this.pooledBytes + v.buffer.byteLength > this.maxPooledBytes) continue; // let GC take it
      this.free.push(v.buffer);
      this.pooledBytes += v.buffer.byteLength;
    }
  }
}
