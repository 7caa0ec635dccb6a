/**
 * The report's ONNX measurement: a plan's folder written into a temporary directory (the quantize
 * pipeline's materialize, with the sweep's quantizer: the same weights the sweep evaluated), then run
 * by ONNX Runtime through the perplexity protocol against the original model's log-probabilities.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BufferPool } from '../../buffer-pool.js';
import type { Checkpoint } from '../../checkpoint.js';
import type { Divergence, Reference } from '../../eval/perplexity.js';
import { newControl } from '../../native.js';
import type { Plan } from '../../plan.js';
import type { TensorQuantizer } from '../../quant/tensor-quantizer.js';
import { NonFiniteCheck } from '../../finite.js';
import { materialize } from '../../quantize.js';
import { onnxFormat } from './onnx-format.js';
import { OrtDecoder } from './ort-session.js';

export async function onnxRuntimeDivergence(ckpt: Checkpoint, plan: Plan, reference: Reference, o: { quantizer: TensorQuantizer; threads: number; signal?: AbortSignal }): Promise<Divergence> {
  const dir = await mkdtemp(join(tmpdir(), 'quantkit-onnx-eval-'));
  try {
    const pool = new BufferPool();
    const control = newControl();
    await onnxFormat.write(plan, dir, { signal: o.signal, materialize: (e) => materialize(ckpt, e, o.threads, control, pool, o.quantizer, new NonFiniteCheck(false)) });
    const ort = await OrtDecoder.open(dir, { threads: o.threads });
    try {
      return await reference.compare(ort);
    } finally {
      await ort.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
