/**
 * Quantizes one tensor as its plan entry says, whichever method chose the scales: RTN, the search with
 * the weight-only column importance, or GPTQ with the calibration's Hessian (a tensor the calibration
 * has no statistics for, such as an untied input embedding, gets the search). The one place `quantize`
 * and the in-memory evaluation call the kernels from.
 */
import { addon, type KernelSpec, type QuantizedParts, type QuantizeStatus } from '../native.js';
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
}

interface Factor {
  hessian: Float32Array;
  factor: Promise<Float64Array>;
  diagonal: Float32Array;
}

export class TensorQuantizer {
  /** Recent factors: q/k/v (and gate/up) share one Hessian, so one factorisation serves them all. */
  private readonly factors: Factor[] = [];

  constructor(
    private readonly importance: Map<string, Float32Array>,
    private readonly calibration?: Calibration,
  ) {}

  quantize(job: TensorJob): Promise<QuantizeStatus> {
    const { name, spec, ...rest } = job;
    // Rows padded to whole blocks (ONNX MatMulNBits) get their statistics padded alike (row-padding.ts).
    const stats = spec.method === 'gptq' ? this.calibration?.hessians.get(name) : undefined;
    const hessian = stats && padHessian(stats, job.cols);
    if (hessian && hessian.length === job.cols * job.cols) {
      const f = this.factorFor(hessian, job.cols, job.threads);
      return f.factor.then((factor) => addon().gptqQuantize({ ...rest, spec, factor, weights: f.diagonal }));
    }
    const method = spec.method === 'gptq' ? 'search' : spec.method;
    // 'imatrix': the --imatrix weights by tensor (plan.ts imatrixWeights), as llama-quantize passes them.
    const importance = method === 'search' || method === 'imatrix' ? this.importance.get(name) : undefined;
    const weights = importance && padColumns(importance, job.cols);
    return addon().quantize({ ...rest, spec: { ...spec, method }, weights });
  }

  private factorFor(hessian: Float32Array, cols: number, threads?: number): Factor {
    let f = this.factors.find((x) => x.hessian === hessian);
    if (!f) {
      const out = new Float64Array(cols * cols);
      const diagonal = new Float32Array(cols);
      for (let j = 0; j < cols; j++) diagonal[j] = Math.max(0, hessian[j * cols + j]!);
      f = { hessian, diagonal, factor: addon().gptqFactor({ hessian, cols, damp: this.calibration!.settings.damp, out, threads }).then(() => out) };
      this.factors.push(f);
      if (this.factors.length > 4) this.factors.shift();
    }
    return f;
  }
}
