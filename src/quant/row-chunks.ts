/**
 * A tensor too large to read whole is quantized a chunk of rows at a time: each chunk of the source is
 * read into a reused buffer (the next one while the current is quantized) and quantized into its rows
 * of the output parts. A 128k-token vocabulary's embedding (Llama 3: 525 MB of bf16) otherwise took a
 * fresh buffer of its own, more than the pool keeps: 0.5 GB of page faults and zeroing, and most of the
 * run's peak memory.
 *
 * Rows are quantized independently, so the output bytes are those of one call over the whole tensor;
 * chunks are whole units of the kernels' own row chunks (layout's rowsPerChunk) and each call continues
 * the error sums of the one before (errorsFrom), so the measured error is the same floats as well. Only
 * for quantizers that pass a job through to one kernel call (RTN, the search, imatrix: no GPTQ, no
 * auto choice) and tensors without a transform.
 */
import type { BufferPool } from '../buffer-pool.js';
import type { Checkpoint, CheckpointTensor } from '../checkpoint.js';
import { addon, type QuantizedParts, type QuantizeStatus } from '../native.js';
import type { TensorJob, TensorQuantizer } from './tensor-quantizer.js';

/** Tensors of more source bytes than this are quantized in row chunks. */
export const ROW_CHUNKED_BYTES = 128 * 2 ** 20;
/** About this many source bytes per chunk. */
const CHUNK_BYTES = 32 * 2 ** 20;

/**
 * Quantizes `job` (whole-tensor parts, no source yet) reading `tensor`'s rows about `chunkBytes` at a
 * time.
 */
export async function quantizeInRowChunks(ckpt: Checkpoint, tensor: CheckpointTensor, job: Omit<TensorJob, 'src'>, quantizer: TensorQuantizer, pool: BufferPool, chunkBytes = CHUNK_BYTES): Promise<QuantizeStatus> {
  const { rows, cols, spec, out } = job;
  const rowBytes = tensor.bytes / rows;
  const l = addon().layout({ spec, cols });
  if (l.error) throw new RangeError(l.error);
  const per = Math.max(1, Math.floor(chunkBytes / rowBytes / l.rowsPerChunk)) * l.rowsPerChunk;
  const buffers = [pool.acquire(Math.min(per, rows) * rowBytes), pool.acquire(Math.min(per, rows) * rowBytes)];
  const read = (r: number, i: number) => ckpt.readRange(tensor, r * rowBytes, buffers[i]!.subarray(0, Math.min(per, rows - r) * rowBytes));
  const status: QuantizeStatus = { nonfinite: 0, firstNonfinite: 0, scaleOverflow: 0, firstOverflowRow: 0 };
  let next: Promise<Uint8Array> | undefined = read(0, 0);
  try {
    for (let r = 0, i = 0; r < rows; r += per, i ^= 1) {
      const src = await next!;
      next = r + per < rows ? read(r + per, i ^ 1) : undefined;
      const n = Math.min(per, rows - r);
      const s = await quantizer.quantize({ ...job, src, rows: n, out: rowsOf(out, r, n, l), ...(status.errors ? { errorsFrom: status.errors } : {}) });
      if (s.nonfinite && !status.nonfinite) status.firstNonfinite = s.firstNonfinite + r * cols;
      status.nonfinite += s.nonfinite;
      if (s.scaleOverflow && !status.scaleOverflow) status.firstOverflowRow = s.firstOverflowRow + r;
      status.scaleOverflow += s.scaleOverflow;
      if (s.errors) status.errors = s.errors;  // the sums so far, continued by the next call
    }
  } finally {
    await next?.catch(() => undefined);
    pool.release(...buffers);
  }
  return status;
}

/** Rows [r, r + n) of quantized parts. */
function rowsOf(p: QuantizedParts, r: number, n: number, l: { dataBytesPerRow: number; scaleBytesPerRow: number; zeroBytesPerRow: number }): QuantizedParts {
  return {
    data: p.data.subarray(r * l.dataBytesPerRow, (r + n) * l.dataBytesPerRow),
    ...(p.scales ? { scales: p.scales.subarray(r * l.scaleBytesPerRow, (r + n) * l.scaleBytesPerRow) } : {}),
    ...(p.zeros ? { zeros: p.zeros.subarray(r * l.zeroBytesPerRow, (r + n) * l.zeroBytesPerRow) } : {}),
  };
}
