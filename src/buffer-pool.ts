/**
 * Reusable byte buffers for tensor data. A fresh multi-megabyte ArrayBuffer costs page faults and
 * zeroing on every tensor (reading a 7.6 GB checkpoint into fresh buffers took 4.7x longer than into
 * reused ones here), and V8 frees them only at its next GC, so resident memory grows with the model.
 * Buffers are handed out by size and returned once their bytes have been written or checked; contents
 * are not cleared (every user overwrites what it asks for).
 */
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
    return new Uint8Array(new ArrayBuffer(capacity), 0, bytes);
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
