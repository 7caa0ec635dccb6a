/**
 * Quantizes one tensor as its plan entry says, whichever method chose the scales: RTN, the search with
 * the weight-only column importance, GPTQ with the calibration's Hessian (a tensor the calibration has
 * no statistics for, such as an untied input embedding, gets the search), or, for `--method auto`, the
 * best of these by measured error (src/quant/auto.ts). The one place `quantize` and the in-memory
 * evaluation call the kernels from.
 */
import { addon, allocateParts, type ErrorSums, type KernelMethod, type KernelSpec, type QuantizedParts, type QuantizeStatus } from '../native.js';
import { toFloat32 } from '../convert.js';
import type { FloatDtype } from '../safetensors/dtypes.js';
import type { Calibration } from './calibration.js';
import { padColumns, padHessian } from './row-padding.js';

export interface TensorJob {
  name: string;
  spec: KernelSpec;
  rows: number;
  cols: number;
  src: Uint8Array;
  srcDtype: FloatDtype;
  out: QuantizedParts;
  threads?: number;
  control?: BigInt64Array;
  /** Output row r from source row rowOrder[r] (only where passesThrough: one kernel call takes it). */
  rowOrder?: Int32Array;
  /** Measure the round trip's error in the same pass (only where passesThrough; the status carries it). */
  measure?: boolean;
  /** With measure: the error sums of the rows before (row-chunks.ts), continued by this call. */
  errorsFrom?: ErrorSums;
}

/** One way to choose a tensor's scales: a kernel method, and for GPTQ the Hessian damping (a fraction of its mean diagonal). */
export interface Candidate {
  method: KernelMethod;
  damp?: number;
}

export const candidateName = (c: Candidate): string => (c.method === 'gptq' && c.damp !== undefined ? `gptq damp ${c.damp}` : c.method);

/** What `--method auto` chose for one tensor: rows per candidate, and the measured error of the choice and of RTN. */
export interface AutoChoice {
  name: string;
  /** Rows written from each candidate (rows are quantized independently, so each row keeps its best). */
  rows: Record<string, number>;
  /** 'output' (tr(dW H dW^T) on the calibration's inputs), 'weighted' (importance-weighted squared error) or 'model' (KL of the model's next-token distribution on its own text). */
  measure: 'output' | 'weighted' | 'model';
  error: number;
  rtnError: number;
}

interface Factor {
  hessian: Float32Array;
  damp: number;
  factor: Promise<Float64Array>;
  diagonal: Float32Array;
}

/** A row-by-row choice made beforehand: row r is written from candidates[rowChoice[r]]. */
export interface RowDecision {
  candidates: Candidate[];
  rowChoice: Uint8Array;
  choice: AutoChoice;
}

export interface AutoSettings {
  /** Tensors whose rows were chosen beforehand by the model's own output (the tied embedding/output head). */
  decided: Map<string, RowDecision>;
  /** False for --method gptq: only the decided tensors are measured, the rest use the plan's method. */
  choose?: boolean;
}

/** Every candidate's quantization of one tensor, dequantized, with each row's squared error (H-weighted when given). */
export interface CandidateRows {
  parts: QuantizedParts[];
  values: Float32Array[];
  /** rowError[c][r]: row r's error under candidate c. */
  rowError: Float64Array[];
  status: QuantizeStatus;
}

export class TensorQuantizer {
  /** Recent factors: q/k/v (and gate/up) share one Hessian, so one factorisation serves them all. */
  private readonly factors: Factor[] = [];
  /** `--method auto`: the choice made for each tensor quantized so far. */
  readonly choices: AutoChoice[] = [];

  constructor(
    private readonly importance: Map<string, Float32Array>,
    private readonly calibration?: Calibration,
    /** Present for `--method auto`: every tensor gets the candidate with the lowest measured error. */
    private readonly auto?: AutoSettings,
  ) {}

  /**
   * Whether quantize(job) for this spec is one addon().quantize call given the job as it is (no auto
   * choice between candidates, no GPTQ), so that the job's rowOrder and measure reach the kernels.
   * Without a calibration 'gptq' is the search (quantizeWith), as auto's fallback on large models plans it.
   */
  passesThrough(spec: KernelSpec): boolean {
    return !this.auto && (spec.method !== 'gptq' || !this.calibration);
  }

  quantize(job: TensorJob): Promise<QuantizeStatus> {
    if (!this.auto) return this.quantizeWith(job, { method: job.spec.method ?? 'rtn' });
    return this.quantizeBest(job, this.auto);
  }

  /** The Hessian GPTQ would use for a tensor (padded as its rows are), if the calibration has one. */
  hessianOf(name: string, cols: number): Float32Array | undefined {
    const stats = this.calibration?.hessians.get(name);
    const h = stats && padHessian(stats, cols);
    return h && h.length === cols * cols ? h : undefined;
  }

  /** Quantizes with one candidate (GPTQ without statistics for this tensor falls back to the search). */
  quantizeWith(job: TensorJob, c: Candidate): Promise<QuantizeStatus> {
    const { name, spec: planned, ...rest } = job;
    const hessian = c.method === 'gptq' ? this.hessianOf(name, job.cols) : undefined;
    if (hessian) {
      const spec: KernelSpec = { ...planned, method: 'gptq' };
      const f = this.factorFor(hessian, job.cols, c.damp ?? this.calibration!.settings.damp, job.threads);
      return f.factor.then((factor) => addon().gptqQuantize({ ...rest, spec, factor, weights: f.diagonal }));
    }
    const method = c.method === 'gptq' ? 'search' : c.method;
    // 'imatrix': the --imatrix weights by tensor (plan.ts imatrixWeights), as llama-quantize passes them.
    const importance = method === 'search' || method === 'imatrix' ? this.importance.get(name) : undefined;
    const weights = importance && padColumns(importance, job.cols);
    const { method: _m, ...base } = planned;
    const spec: KernelSpec = method === 'rtn' ? base : { ...base, method };
    return addon().quantize({ ...rest, spec, weights });
  }

  /**
   * `--method auto` for one tensor: RTN, the search and (with calibration statistics) GPTQ, each
   * measured by the error that matters for the tensor (the layer's output error on the calibration
   * inputs where there are statistics, else the importance-weighted weight error), row by row: every
   * row is written from the candidate with its lowest error. RTN is always a candidate, so no row (and
   * no tensor) ends worse than RTN by that measure.
   */
  private async quantizeBest(job: TensorJob, auto: AutoSettings): Promise<QuantizeStatus> {
    const decided = auto.decided.get(job.name);
    if (decided) {
      this.choices.push(decided.choice);
      const c = await this.candidateRows(job, decided.candidates, 'weighted');
      if (failed(c.status)) return copyInto(job.out, c.parts[0]!, c.status);
      assembleRows(job, c.parts, decided.rowChoice, job.out);
      return c.status;
    }
    if (auto.choose === false) return this.quantizeWith(job, { method: job.spec.method ?? 'rtn' });
    // The plan's kernel method says what the scheme takes: 'gptq' (symmetric codes), 'search', or a
    // method only llama.cpp's quantizer covers (K-quants), which is then the only candidate.
    const planned = job.spec.method ?? 'rtn';
    if (planned !== 'gptq' && planned !== 'search') return this.quantizeWith(job, { method: planned });
    const hessian = planned === 'gptq' ? this.hessianOf(job.name, job.cols) : undefined;
    const candidates: Candidate[] = [{ method: 'rtn' }, { method: 'search' }, ...(hessian ? [{ method: 'gptq' as const }] : [])];
    const measure = hessian ? 'output' : 'weighted';
    const c = await this.candidateRows(job, candidates, measure);
    if (failed(c.status)) return copyInto(job.out, c.parts[0]!, c.status);
    const rowChoice = new Uint8Array(job.rows);
    let error = 0, rtnError = 0;
    for (let r = 0; r < job.rows; r++) {
      let b = 0;
      for (let k = 1; k < candidates.length; k++) if (c.rowError[k]![r]! < c.rowError[b]![r]!) b = k;
      rowChoice[r] = b;
      error += c.rowError[b]![r]!;
      rtnError += c.rowError[0]![r]!;
    }
    this.choices.push({ name: job.name, rows: rowCounts(candidates, rowChoice), measure, error, rtnError });
    assembleRows(job, c.parts, rowChoice, job.out);
    return c.status;
  }

  /** Quantizes a tensor with each candidate and measures every row (measure 'output' needs the tensor's Hessian). */
  async candidateRows(job: TensorJob, candidates: Candidate[], measure: 'output' | 'weighted'): Promise<CandidateRows> {
    const original = toFloat32(job.src, job.srcDtype);
    const hessian = measure === 'output' ? this.hessianOf(job.name, job.cols) : undefined;
    const importance = this.importance.get(job.name);
    const weights = importance && padColumns(importance, job.cols);
    const out: CandidateRows = { parts: [], values: [], rowError: [], status: { nonfinite: 0, firstNonfinite: -1, scaleOverflow: 0, firstOverflowRow: -1 } };
    for (const candidate of candidates) {
      const parts = allocateParts(job.spec, job.rows, job.cols);
      const status = await this.quantizeWith({ ...job, out: parts }, candidate);
      if (failed(status)) return { parts: [parts], values: [], rowError: [], status };
      out.status = status;
      const values = new Float32Array(job.rows * job.cols);
      await addon().dequantize({ spec: job.spec, rows: job.rows, cols: job.cols, parts, out: values, threads: job.threads });
      out.parts.push(parts);
      out.values.push(values);
      out.rowError.push(hessian ? rowOutputErrors(original, values, hessian, job.rows, job.cols) : rowWeightedErrors(original, values, job.rows, job.cols, weights));
    }
    return out;
  }

  private factorFor(hessian: Float32Array, cols: number, damp: number, threads?: number): Factor {
    let f = this.factors.find((x) => x.hessian === hessian && x.damp === damp);
    if (!f) {
      const out = new Float64Array(cols * cols);
      const diagonal = new Float32Array(cols);
      for (let j = 0; j < cols; j++) diagonal[j] = Math.max(0, hessian[j * cols + j]!);
      f = { hessian, damp, diagonal, factor: addon().gptqFactor({ hessian, cols, damp, out, threads }).then(() => out) };
      this.factors.push(f);
      if (this.factors.length > 4) this.factors.shift();
    }
    return f;
  }
}

function failed(s: QuantizeStatus): boolean {
  return s.nonfinite > 0 || s.scaleOverflow > 0;
}

function copyInto(out: QuantizedParts, parts: QuantizedParts, status: QuantizeStatus): QuantizeStatus {
  out.data.set(parts.data);
  if (parts.scales) out.scales!.set(parts.scales);
  if (parts.zeros) out.zeros!.set(parts.zeros);
  return status;
}

export function rowCounts(candidates: Candidate[], rowChoice: Uint8Array): Record<string, number> {
  const rows: Record<string, number> = {};
  for (const k of rowChoice) rows[candidateName(candidates[k]!)] = (rows[candidateName(candidates[k]!)] ?? 0) + 1;
  return rows;
}

/** Writes row r of out from parts[rowChoice[r]] (every layout stores rows one after the other). */
export function assembleRows(job: { spec: KernelSpec; rows: number; cols: number }, parts: QuantizedParts[], rowChoice: Uint8Array, out: QuantizedParts): void {
  const l = addon().layout({ spec: job.spec, cols: job.cols });
  for (let r = 0; r < job.rows; r++) {
    const p = parts[rowChoice[r]!]!;
    const copy = (to: Uint8Array | Int8Array | undefined, from: Uint8Array | Int8Array | undefined, n: number) => {
      if (to && from && n) to.set(from.subarray(r * n, (r + 1) * n), r * n);
    };
    copy(out.data, p.data, l.dataBytesPerRow);
    copy(out.scales, p.scales, l.scaleBytesPerRow);
    copy(out.zeros, p.zeros, l.zeroBytesPerRow);
  }
}

/** d H d^T of every row of D = a - b (rows x cols), H (cols x cols): each output channel's squared error summed over the calibration tokens. */
export function rowOutputErrors(a: Float32Array, b: Float32Array, h: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  const d = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) d[j] = a[r * cols + j]! - b[r * cols + j]!;
    let s = 0;
    for (let i = 0; i < cols; i++) {
      if (d[i] === 0) continue;
      let t = 0;
      const hi = i * cols;
      for (let j = 0; j < cols; j++) t += h[hi + j]! * d[j]!;
      s += d[i]! * t;
    }
    out[r] = s;
  }
  return out;
}

/** Each row's sum of w[col] * (a - b)^2 (w = 1 without an importance). */
export function rowWeightedErrors(a: Float32Array, b: Float32Array, rows: number, cols: number, w?: Float32Array): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < cols; j++) {
      const d = a[r * cols + j]! - b[r * cols + j]!;
      s += (w ? w[j]! : 1) * d * d;
    }
    out[r] = s;
  }
  return out;
}
