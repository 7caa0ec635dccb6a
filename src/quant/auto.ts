/**
 * `--method auto`, the default: every tensor quantized with the candidates its scheme takes (RTN, the
 * search, GPTQ) and written with the one whose measured error is lowest (tensor-quantizer.ts). This
 * module prepares what the measurement needs before the first tensor is written:
 *  - the column importance (weights only) and, where the reference forward pass covers the model and it
 *    fits in memory, the calibration (text the model writes itself, and every layer's input statistics);
 *    without them the default is the search, the best calibration-free method (the note says so);
 *  - the choice for a tied embedding/output head. The tensor serves twice: as the head (its error weighs
 *    by the final norm's input statistics, GPTQ's Hessian) and as the lookup table (each row's error goes
 *    straight into the residual stream of every position holding that token). GPTQ with the head's
 *    Hessian alone minimises the first and trades for it a larger row error, which the lookup use pays:
 *    on tinystories-656k that made GPTQ worse than RTN (docs/quality.md). No single Hessian holds both
 *    uses, so the candidates (RTN, the search, GPTQ with the Hessian damped by increasing multiples of
 *    its mean diagonal, which moves it towards the search) are measured on the model itself: each
 *    replaces the tied tensor alone and the one with the lowest KL divergence from the original on
 *    calibration text is kept.
 */
import type { Checkpoint } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import { LlamaModel, autoCalibrationRefusal } from '../eval/llama.js';
import { totalmem } from 'node:os';
import { Reference } from '../eval/perplexity.js';
import { allocateParts } from '../native.js';
import type { Plan } from '../plan.js';
import { calibrates, type CalibrationOptions } from '../options.js';
import type { FloatDtype } from '../safetensors/dtypes.js';
import { type Calibration, calibrate } from './calibration.js';
import { estimateColumnImportance } from './importance.js';
import { toFloat32 } from '../convert.js';
import { type AutoChoice, type AutoSettings, type Candidate, TensorQuantizer, rowCounts, rowWeightedErrors } from './tensor-quantizer.js';

/** GPTQ dampings tried for a tied embedding/output head (multiples of its Hessian's mean diagonal). */
export const TIED_DAMPINGS = [0.1, 1, 3, 10];
/** Weights of the lookup use against the head use in the tied tensor's row choice (0: the head alone). */
export const LOOKUP_WEIGHTS = [0, 0.1, 0.3, 1, 3, 10];
/** Calibration sequences the tied tensor's candidates are compared on. */
const TIED_SEQUENCES = 16;

export interface PreparedQuantizer {
  quantizer: TensorQuantizer;
  calibration?: Calibration;
  /** Why the run fell back to a calibration-free method (auto without a forward pass for this model). */
  fallback?: string;
}

/** The importance, calibration and (auto) tied-tensor choice a plan's method needs, and the quantizer using them. */
export async function prepareQuantizer(
  ckpt: Checkpoint,
  plan: Plan,
  o: { calibration?: CalibrationOptions; threads?: number; signal?: AbortSignal; onCalibrate?: (done: boolean) => void; importance?: Map<string, Float32Array>; calibrated?: Calibration } = {},
): Promise<PreparedQuantizer> {
  const method = plan.options.quantMethod;
  const quantized = plan.entries.some((e) => e.treatment.kind === 'quantize');
  const importance = finiteOnly(o.importance ?? (method !== 'rtn' && quantized ? await estimateColumnImportance(ckpt, o.signal) : new Map<string, Float32Array>()));
  if (!calibrates(method) || !quantized) return { quantizer: new TensorQuantizer(importance) };
  const wantsGptq = plan.entries.some((e) => e.treatment.kind === 'quantize' && e.treatment.spec.method === 'gptq');
  if (method !== 'auto') {
    // GPTQ: the tied embedding/output head gets the same measured treatment as under auto (with the
    // head's statistics alone GPTQ made it worse than RTN); every other tensor is plain GPTQ.
    const calibration = o.calibrated ?? (await runCalibration(ckpt, o));
    const decided = await chooseTied(ckpt, plan, importance, calibration, o);
    return { quantizer: new TensorQuantizer(importance, calibration, { decided, choose: false }), calibration };
  }
  // Without a forward pass for the model (or the memory for its f32 copy) auto is the search, the best
  // calibration-free method, run as it is (measuring RTN beside it would halve its speed).
  const fallback = (why: string): PreparedQuantizer => ({ quantizer: new TensorQuantizer(importance), fallback: `--method auto without calibration (${why}): the search, the best calibration-free method` });
  if (!plan.options.calibrated) return fallback(autoCalibrationRefusal(ckpt, totalmem()) ?? 'the checkpoint was planned from its shapes alone');
  if (!wantsGptq) return { quantizer: new TensorQuantizer(importance, undefined, { decided: new Map() }) };
  let calibration = o.calibrated;
  if (!calibration) {
    try {
      calibration = await runCalibration(ckpt, o);
    } catch (e) {
      if (e instanceof QuantkitError && e.code === 'ERR_USAGE') return fallback(e.message);
      throw e;
    }
  }
  // NaN/Inf weights make NaN statistics: no measurement is possible, and quantize refuses or copies
  // those weights by its own rule (--allow-non-finite).
  if ([...calibration.hessians.values()].some((h) => !h.every(Number.isFinite))) return fallback('its statistics are not finite: the weights hold NaN/Inf');
  const decided = await chooseTied(ckpt, plan, importance, calibration, o);
  return { quantizer: new TensorQuantizer(importance, calibration, { decided }), calibration };
}

/** The importance estimates without non-finite values (NaN/Inf weights): those tensors are searched unweighted. */
function finiteOnly(importance: Map<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...importance].filter(([, v]) => v.every(Number.isFinite)));
}

async function runCalibration(ckpt: Checkpoint, o: { calibration?: CalibrationOptions; threads?: number; signal?: AbortSignal; onCalibrate?: (done: boolean) => void }): Promise<Calibration> {
  o.onCalibrate?.(false);
  const c = await calibrate(ckpt, { ...o.calibration, threads: o.threads, signal: o.signal });
  o.onCalibrate?.(true);
  return c;
}

/**
 * The tied embedding/output head's rows, chosen by the model's own output (see the module comment).
 * Each candidate's rows are scored by the head's error (d H d^T) plus the lookup's, lambda times the
 * row's squared error times how often its token occurs in the calibration text (relative to the mean,
 * in units of H's mean diagonal); every row takes its lowest-scoring candidate. Lambda, whose right
 * value depends on how the layers amplify the residual stream, is picked from LOOKUP_WEIGHTS by the KL
 * divergence of the model with that tensor alone replaced; plain RTN is measured the same way and
 * kept if nothing beats it.
 */
async function chooseTied(ckpt: Checkpoint, plan: Plan, importance: Map<string, Float32Array>, calibration: Calibration, o: { threads?: number; signal?: AbortSignal }): Promise<AutoSettings['decided']> {
  const decided: AutoSettings['decided'] = new Map();
  const tiedName = tiedTensor(ckpt);
  const entry = tiedName && plan.entries.find((e) => e.tensor.name === tiedName);
  if (!entry || entry.treatment.kind !== 'quantize' || entry.treatment.spec.method !== 'gptq' || entry.treatment.transform) return decided;
  const t = entry.treatment;
  const { rows, cols } = t.view;
  const quantizer = new TensorQuantizer(importance, calibration);
  const hessian = quantizer.hessianOf(tiedName, cols);
  if (!hessian || rows !== Number(ckpt.config?.vocab_size ?? rows)) return decided;
  const src = await ckpt.read(entry.tensor);
  const job = { name: tiedName, spec: t.spec, rows, cols, src, srcDtype: entry.tensor.dtype as FloatDtype, out: allocateParts(t.spec, rows, cols), threads: o.threads };
  const candidates: Candidate[] = [{ method: 'rtn' }, { method: 'search' }, ...TIED_DAMPINGS.map((damp) => ({ method: 'gptq' as const, damp }))];
  const head = await quantizer.candidateRows(job, candidates, 'output');
  if (head.values.length !== candidates.length) return decided; // quantize itself reports the bad weights
  const original = toFloat32(src, entry.tensor.dtype);
  const lookup = head.values.map((v) => rowWeightedErrors(original, v, rows, cols));
  // How often each token is looked up in the calibration text, relative to the mean, and H's scale.
  const counts = new Float64Array(rows);
  for (const id of calibration.tokens) if (id >= 0 && id < rows) counts[id]! += 1;
  const meanCount = calibration.tokens.length / rows;
  let meanDiag = 0;
  for (let j = 0; j < cols; j++) meanDiag += hessian[j * cols + j]!;
  meanDiag /= cols;

  const { length } = calibration.settings;
  const sequences: number[][] = [];
  for (let s = 0; s < Math.min(TIED_SEQUENCES, calibration.tokens.length / length); s++) sequences.push([...calibration.tokens.subarray(s * length, (s + 1) * length)]);
  const reference = await Reference.compute(await LlamaModel.load(ckpt), sequences, o.threads);
  const klOf = async (rowChoice: Uint8Array): Promise<number> => {
    o.signal?.throwIfAborted();
    const values = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) values.set(head.values[rowChoice[r]!]!.subarray(r * cols, (r + 1) * cols), r * cols);
    const model = await LlamaModel.load(ckpt, async (x, v) => (x.name === tiedName ? values : v));
    return (await reference.compare(model, o.threads)).kl_mean;
  };
  const rtnChoice = new Uint8Array(rows);
  const rtnKl = await klOf(rtnChoice);
  let best = { rowChoice: rtnChoice, kl: rtnKl };
  for (const lambda of LOOKUP_WEIGHTS) {
    const rowChoice = new Uint8Array(rows);
    for (let r = 0; r < rows; r++) {
      const w = lambda * meanDiag * (counts[r]! / meanCount);
      let b = 0, bs = Infinity;
      for (let k = 0; k < candidates.length; k++) {
        const score = head.rowError[k]![r]! + w * lookup[k]![r]!;
        if (score < bs) (bs = score), (b = k);
      }
      rowChoice[r] = b;
    }
    const kl = await klOf(rowChoice);
    if (kl < best.kl) best = { rowChoice, kl };
  }
  const choice: AutoChoice = { name: tiedName, rows: rowCounts(candidates, best.rowChoice), measure: 'model', error: best.kl, rtnError: rtnKl };
  decided.set(tiedName, { candidates, rowChoice: best.rowChoice, choice });
  return decided;
}

/** The stored name of a tied embedding/output head (one tensor serving both), if the model has one. */
export function tiedTensor(ckpt: Checkpoint): string | undefined {
  const head = ckpt.aliases.get('lm_head.weight');
  if (head === 'model.embed_tokens.weight') return head;
  if (ckpt.aliases.get('model.embed_tokens.weight') === 'lm_head.weight') return 'lm_head.weight';
  return undefined;
}

/** What auto did over a whole run: rows per candidate over every quantized tensor, the tied tensor's choice, and the fallback if any. */
export interface AutoSummary {
  rows: Record<string, number>;
  /** Tensors where the choice beat RTN by its measure, and where RTN itself was kept. */
  tensors: { total: number; rtn_only: number };
  tied?: { name: string; kl: number; rtn_kl: number; rows: Record<string, number> };
  fallback?: string;
}

export function autoSummary(choices: readonly AutoChoice[], fallback?: string): AutoSummary {
  const rows: Record<string, number> = {};
  let rtnOnly = 0;
  for (const c of choices) {
    for (const [k, n] of Object.entries(c.rows)) rows[k] = (rows[k] ?? 0) + n;
    if (Object.keys(c.rows).every((k) => k === 'rtn')) rtnOnly++;
  }
  const tied = choices.find((c) => c.measure === 'model');
  return {
    rows,
    tensors: { total: choices.length, rtn_only: rtnOnly },
    ...(tied ? { tied: { name: tied.name, kl: tied.error, rtn_kl: tied.rtnError, rows: tied.rows } } : {}),
    ...(fallback ? { fallback } : {}),
  };
}
