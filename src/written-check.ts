/**
 * Quantize's default verification ("fast"): each tensor's error is measured from the buffers that are
 * about to be written (the source as read and transformed, the quantized parts dequantized by the same
 * kernels verify uses), while both are still in memory; the files are hashed (CRC-32) as they are
 * written; and the finished output is re-opened with quantkit's own readers, whose every tensor must be
 * the one planned (same name, source, encoding, byte count) and carry a measurement. So the report
 * proves what `quantkit verify` proves — error of every tensor, sizes equal to the prediction, the files
 * readable — without reading the source and the output a second time. `--verify full` adds that
 * second reading (verify.ts: dequantize every tensor from disk and compare with the source re-read) and
 * compares the files' bytes on disk with the checksums taken while writing.
 */
import { open } from 'node:fs/promises';
import type { Checkpoint } from './checkpoint.js';
import { crc32 } from './crc32.js';
import { QuantkitError } from './errors.js';
import type { PlanEntry } from './formats/format.js';
import { type Plan, formatFor } from './plan.js';
import { addon, newControl, type ErrorSums, type KernelSpec, type QuantizedParts } from './native.js';
import { type Dtype, type FloatDtype, shapeElements } from './safetensors/dtypes.js';
import type { BufferPool } from './buffer-pool.js';
import { EXACT, type ErrorMetrics, type TensorReport, type VerifyResult, keptIsConverted, metricsFromSums, sourceOf, summarize, valueMetrics } from './verify.js';

export type VerifyMode = 'fast' | 'full';

/** What the report says about the verification that ran. */
export interface VerificationInfo {
  mode: VerifyMode;
  checks: string[];
  /** CRC-32 of each file written, as written (hex). */
  checksums: { name: string; bytes: number; crc32: string }[];
}

type Measured = { treatment: 'quantized'; metrics: ErrorMetrics; sums: ErrorSums } | { treatment: 'kept' | 'converted'; metrics: ErrorMetrics };

/** Per source tensor, the error measured from the in-memory buffers before they were written. */
export class Measurements {
  private readonly byTensor = new Map<string, Measured>();

  /** A quantized tensor: `src` is what the kernels quantized (after any transform), `parts` their output. */
  async quantized(e: PlanEntry, spec: KernelSpec, rows: number, cols: number, src: Uint8Array, srcDtype: FloatDtype, parts: QuantizedParts, threads: number): Promise<void> {
    // Its own control block: the run's counts the bytes quantized for the progress bar.
    this.record(e, rows, cols, await addon().errorStats({ spec, rows, cols, src, srcDtype, parts, threads, control: newControl() }));
  }

  /** A quantized tensor's error sums, measured by the quantize call itself (`measure`) or by quantized(). */
  record(e: PlanEntry, rows: number, cols: number, measured: ErrorSums): void {
    const sums = { ...measured };
    if (sums.nonfinite > 0) throw new QuantkitError('ERR_VERIFY', `${sums.nonfinite} values are NaN/Inf after dequantization`, { file: e.tensor.file, tensor: e.tensor.name });
    sums.count -= rows * cols - shapeElements(e.tensor.shape)!; // padding (whole blocks) is compared, not counted
    this.byTensor.set(e.tensor.name, { treatment: 'quantized', metrics: metricsFromSums(sums), sums });
  }

  /** A kept tensor: `source` after any transform, `stored` the bytes written. */
  kept(e: PlanEntry, source: Uint8Array, sourceDtype: Dtype, stored: Uint8Array, storedDtype: Dtype): void {
    const transform = e.treatment.transform;
    if (!keptIsConverted(storedDtype, e.tensor.dtype, transform)) {
      // The stored bytes are the source's values (the same bytes, or widened exactly by convertTensor).
      this.byTensor.set(e.tensor.name, { treatment: 'kept', metrics: EXACT });
      return;
    }
    const { metrics, exact } = valueMetrics(source, sourceDtype, stored, storedDtype);
    this.byTensor.set(e.tensor.name, { treatment: exact ? 'kept' : 'converted', metrics });
  }

  get(name: string): Measured | undefined {
    return this.byTensor.get(name);
  }
}

/** CRC-32 of a file read back from disk, in 16 MiB slices through `pool`. */
export async function fileCrc32(path: string, pool: BufferPool): Promise<{ bytes: number; crc32: number }> {
  const fh = await open(path, 'r');
  const buf = pool.acquire(16 << 20);
  try {
    let crc = 0, at = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, at);
      if (bytesRead === 0) break;
      crc = crc32(buf.subarray(0, bytesRead), crc);
      at += bytesRead;
    }
    return { bytes: at, crc32: crc };
  } finally {
    pool.release(buf);
    await fh.close();
  }
}

function sameLayout(a: KernelSpec, b: KernelSpec): boolean {
  return a.scheme === b.scheme && a.bits === b.bits && a.group === b.group && a.scaleDtype === b.scaleDtype;
}

const hex = (n: number) => n.toString(16).padStart(8, '0');

/**
 * Compares the files on disk with the checksums taken while writing them (`--verify full`); throws
 * ERR_VERIFY naming the first file that differs.
 */
export async function compareChecksums(written: Map<string, { bytes: number; crc32: number }>, pool: BufferPool): Promise<void> {
  for (const [path, w] of written) {
    const r = await fileCrc32(path, pool);
    if (r.bytes !== w.bytes || r.crc32 !== w.crc32)
      throw new QuantkitError('ERR_VERIFY', `file on disk (${r.bytes} bytes, CRC-32 ${hex(r.crc32)}) differs from the bytes written (${w.bytes} bytes, CRC-32 ${hex(w.crc32)})`, { file: path });
  }
}

export function checksumList(dir: string, written: Map<string, { bytes: number; crc32: number }>): VerificationInfo['checksums'] {
  return [...written].map(([path, c]) => ({ name: path.slice(dir.length + 1), bytes: c.bytes, crc32: hex(c.crc32) })).sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The fast verification's result: the output re-opened with the format's reader; every tensor found
 * there must be a planned one, stored as planned, and have been measured while written.
 */
export async function checkWritten(dir: string, ckpt: Checkpoint, plan: Plan, measured: Measurements): Promise<VerifyResult> {
  const rb = await formatFor(plan.format).readBack(dir);
  try {
    const planned = new Map(plan.entries.map((e) => [e.tensor.name, e]));
    const tensors: TensorReport[] = [];
    let sumSqErr = 0, sumSqRef = 0, maxAbsErr = 0, count = 0;
    for (const t of rb.tensors) {
      const s = sourceOf(ckpt, t.source ?? t.name, dir);
      const e = planned.get(s.name);
      const m = measured.get(s.name);
      const fail = (why: string) => new QuantkitError('ERR_VERIFY', why, { file: dir, tensor: t.name });
      if (!e || !m) throw fail('was not written by this run (no measurement for it)');
      const tr = e.treatment;
      if (t.kind !== tr.kind) throw fail(`stored ${t.kind === 'keep' ? 'unquantized' : 'quantized'}, planned ${tr.kind === 'keep' ? 'kept' : 'quantized'}`);
      if (t.bytes !== e.outputBytes) throw fail(`holds ${t.bytes} bytes, planned ${e.outputBytes}`);
      // The stored encoding (the method that chose the values is not stored, only the layout it fills).
      if (t.kind === 'quantize' && tr.kind === 'quantize' && (!sameLayout(t.spec, tr.spec) || t.view.rows !== tr.view.rows || t.view.cols !== tr.view.cols))
        throw fail(`stored as ${t.label} ${t.view.rows}x${t.view.cols}, planned ${tr.label} ${tr.view.rows}x${tr.view.cols}`);
      if (t.kind === 'keep' && tr.kind === 'keep' && t.dtype !== tr.outDtype) throw fail(`stored as ${t.dtype}, planned ${tr.outDtype}`);
      const label = t.kind === 'quantize' ? t.label : t.dtype;
      tensors.push({ name: t.name, ...(t.source ? { source: t.source } : {}), shape: s.shape, sourceDtype: s.dtype, bytes: t.bytes, params: shapeElements(s.shape)!, treatment: m.treatment, format: label, ...m.metrics });
      if (m.treatment === 'quantized') {
        sumSqErr += m.sums.sumSqErr;
        sumSqRef += m.sums.sumSqRef;
        maxAbsErr = Math.max(maxAbsErr, m.sums.maxAbsErr);
        count += m.sums.count;
      }
    }
    return await summarize(tensors, { sumSqErr, sumSqRef, maxAbsErr, count }, ckpt, dir, rb.format);
  } finally {
    await rb.close();
  }
}
