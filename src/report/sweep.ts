/**
 * The accuracy-vs-size sweep behind `quantkit report`: every combination of bits, group size, mode,
 * method and format that quantize accepts, planned by the same planner, quantized in memory by the
 * same kernels, and measured: bits per weight and exact packed size (the plan), weight error per tensor
 * and overall, predicted inference memory (the estimator), and, where the reference forward pass covers
 * the architecture, perplexity, KL divergence and top-1 agreement against the original.
 */
import { availableCpus } from '../cpus.js';
import { join } from 'node:path';
import { Checkpoint, pathExists } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import { EVAL_ARCHITECTURES, LlamaModel } from '../eval/llama.js';
import { type Divergence, type Perplexity, Reference, evaluationSequences } from '../eval/perplexity.js';
import { quantizeInMemory } from '../eval/quantized-values.js';
import { BUNDLED_EVAL_TEXT } from '../eval/written-eval.js';
import { estimateModel } from '../estimate/estimate.js';
import { fromCheckpoint } from '../estimate/model.js';
import { type CalibrationOptions, type FormatName, type GroupSize, type Mode, QUANT_METHODS, type QuantMethod, planModeLabel, planQuantization, calibrates, usesIq4nl } from '../plan.js';
import { type Calibration, calibrate } from '../quant/calibration.js';
import { estimateColumnImportance } from '../quant/importance.js';
import { metricsFromSums } from '../verify.js';
import { onnxRuntimeDivergence } from '../formats/onnx/runtime-eval.js';
import { prepareQuantizer } from '../quant/auto.js';

/**
 * A sweep's mode axis: quantize's --sym / --asym, or 'default', the mode quantize picks with neither
 * flag (symmetric, but auto's per-tensor zero points in packed safetensors: options.ts autoZeroPoint),
 * so that the CLI's default file has its own point. A 'default' variant that plans the same as 'sym' in
 * the same sweep is skipped as a repeat.
 */
export type SweepMode = Mode | 'default';

export interface SweepAxes {
  bits: (4 | 8)[];
  groupSizes: GroupSize[];
  modes: SweepMode[];
  methods: QuantMethod[];
  formats: FormatName[];
}

export interface ReportOptions extends Partial<SweepAxes> {
  /** Evaluation text (documents separated by `<|endoftext|>` lines); default: the bundled TinyStories excerpt. */
  evalFile?: string;
  /** Tokens per document, BOS included (default 512). */
  maxTokens?: number;
  /** Skip the model-level evaluation (weight error, sizes and memory only). */
  weightsOnly?: boolean;
  /** GPTQ methods: the calibration settings (one calibration serves every GPTQ variant). */
  calibration?: CalibrationOptions;
  /** Passed to every variant's plan, as in quantize. */
  keep?: string[];
  bitsFor?: string[];
  threads?: number;
  signal?: AbortSignal;
  /** One line per step (variant planned, evaluated). */
  onProgress?: (message: string) => void;
}

export const DEFAULT_AXES: SweepAxes = { bits: [4, 8], groupSizes: [32, 128], modes: ['sym', 'asym', 'default'], methods: [...QUANT_METHODS], formats: ['safetensors', 'gguf', 'onnx'] };

export interface WeightError {
  rel_rmse: number;
  rmse: number;
  max_abs_err: number;
  snr_db: number | null;
}

export interface VariantResult {
  label: string;
  bits: 4 | 8;
  group_size: GroupSize;
  /** As planned: sym, asym, or 'sym+asym (auto)' (plan.ts planModeLabel). */
  mode: string;
  method: QuantMethod;
  format: FormatName;
  /** Average stored bits per quantized weight (scales and zero points included). */
  bits_per_weight: number;
  /** Exact bytes of the files quantize would write. */
  packed_bytes: number;
  quantized_params: number;
  weight_error: WeightError;
  tensors: ({ name: string; format: string; params: number } & WeightError)[];
  /** Inference peak (GPU allocator, batch 1, 2,048 tokens, as `estimate` predicts it) and its weights. */
  predicted_memory: { inference_peak_bytes: number; weights_bytes: number } | null;
  model: Divergence | null;
  /** ONNX variants: the written files run by ONNX Runtime, measured the same way (null without onnxruntime-node). */
  onnxruntime?: Divergence | null;
  pareto: { rel_rmse: boolean; perplexity: boolean };
}

export interface SkippedVariant {
  label: string;
  reason: string;
}

export interface SweepResult {
  model: string;
  source_params: number;
  source_bytes: number;
  eval: { file: string; documents: number; tokens: number; max_tokens: number; original: Perplexity } | null;
  eval_skipped: string | null;
  variants: VariantResult[];
  skipped: SkippedVariant[];
}

function labelOf(v: { bits: number; groupSize: GroupSize; mode: string; method: QuantMethod; format: FormatName }): string {
  return `${v.format} int${v.bits} ${v.groupSize === 'row' ? 'row' : `g${v.groupSize}`} ${v.mode} ${v.method}`;
}

function weightError(s: { sumSqErr: number; sumSqRef: number; maxAbsErr: number; count: number }): WeightError {
  const m = metricsFromSums(s);
  return { rel_rmse: m.relRmse, rmse: m.rmse, max_abs_err: m.maxAbsErr, snr_db: Number.isFinite(m.snrDb) ? m.snrDb : null };
}

/** Marks the points no other point beats on both axes (fewer bits and lower metric). */
export function paretoFront(points: { x: number; y: number }[]): boolean[] {
  return points.map((p, i) => !points.some((q, j) => j !== i && q.x <= p.x && q.y <= p.y && (q.x < p.x || q.y < p.y)));
}

export async function runSweep(model: string, o: ReportOptions): Promise<SweepResult> {
  const axes: SweepAxes = {
    bits: o.bits ?? DEFAULT_AXES.bits,
    groupSizes: o.groupSizes ?? DEFAULT_AXES.groupSizes,
    modes: o.modes ?? DEFAULT_AXES.modes,
    methods: o.methods ?? DEFAULT_AXES.methods,
    formats: o.formats ?? DEFAULT_AXES.formats,
  };
  for (const [k, v] of Object.entries(axes)) if ((v as unknown[]).length === 0) throw new QuantkitError('ERR_USAGE', `report: the ${k} list is empty`);
  const threads = o.threads ?? availableCpus();
  const progress = o.onProgress ?? (() => undefined);
  const ckpt = await Checkpoint.open(model);
  try {
    // The original model's log-probabilities, once.
    let reference: Reference | null = null;
    let evalInfo: SweepResult['eval'] = null;
    let evalSkipped: string | null = o.weightsOnly ? 'weights only (--no-eval)' : null;
    if (!o.weightsOnly) {
      const type = String(ckpt.config?.model_type ?? 'unknown');
      const tokFile = join(ckpt.dir, 'tokenizer.json');
      if (!EVAL_ARCHITECTURES.includes(type)) evalSkipped = `the reference forward pass covers ${EVAL_ARCHITECTURES.join(', ')}, not ${type}`;
      else if (!(await pathExists(tokFile))) evalSkipped = 'no tokenizer.json beside the weights';
      else {
        const file = o.evalFile ?? BUNDLED_EVAL_TEXT;
        const maxTokens = o.maxTokens ?? 512;
        if (!(Number.isSafeInteger(maxTokens) && maxTokens >= 2)) throw new QuantkitError('ERR_USAGE', '--max-tokens must be an integer >= 2');
        const seqs = await evaluationSequences(ckpt, file, maxTokens);
        progress(`evaluating the original on ${seqs.length} documents`);
        reference = await Reference.compute(await LlamaModel.load(ckpt), seqs, threads);
        evalInfo = { file, documents: seqs.length, tokens: reference.result.tokens, max_tokens: maxTokens, original: reference.result };
      }
    }
    const needsImportance = axes.methods.some((m) => m !== 'rtn');
    const importance = needsImportance ? await estimateColumnImportance(ckpt, o.signal, undefined, threads) : new Map<string, Float32Array>();
    const estimateBase = fromCheckpoint(ckpt, 'safetensors headers');
    // GPTQ's calibration, once, when the first GPTQ variant needs it (a string: why it cannot run here).
    let calibration: Calibration | string | undefined;
    const calibrationFor = async (): Promise<Calibration | string> => {
      if (calibration === undefined) {
        progress('calibrating GPTQ on text the model writes');
        calibration = await calibrate(ckpt, { ...o.calibration, threads, signal: o.signal }).catch((e: unknown) => {
          if (e instanceof QuantkitError && e.code === 'ERR_USAGE') return e.message;
          throw e;
        });
      }
      return calibration;
    };

    const variants: VariantResult[] = [];
    const skipped: SkippedVariant[] = [];
    for (const format of axes.formats)
      for (const bits of axes.bits)
        for (const groupSize of axes.groupSizes)
          for (const mode of axes.modes)
            for (const method of axes.methods) {
              o.signal?.throwIfAborted();
              let label = labelOf({ bits, groupSize, mode, method, format });
              if (usesIq4nl(method) && bits === 8) {
                skipped.push({ label, reason: 'IQ4_NL is a 4-bit code (8-bit tensors would repeat the search variant)' });
                continue;
              }
              const options = { bits, groupSize, ...(mode === 'default' ? {} : { mode }), quantMethod: method, format, keep: o.keep, bitsFor: o.bitsFor };
              let plan;
              try {
                plan = await planQuantization(ckpt, options);
              } catch (e) {
                if (e instanceof QuantkitError && (e.code === 'ERR_USAGE' || e.code === 'ERR_PLAN')) {
                  skipped.push({ label, reason: e.message });
                  continue;
                }
                throw e;
              }
              const planned = planModeLabel(plan);
              if (mode === 'default') {
                if (planned === plan.options.mode && axes.modes.includes(plan.options.mode)) {
                  skipped.push({ label, reason: `the same plan as ${plan.options.mode}` });
                  continue;
                }
                label = labelOf({ bits, groupSize, mode: planned, method, format });
              }
              if (plan.quantizedParams === 0) {
                skipped.push({ label, reason: 'no tensor is quantized' });
                continue;
              }
              const cal = calibrates(method) && (method !== 'auto' || plan.options.calibrated) ? await calibrationFor() : undefined;
              if (typeof cal === 'string') {
                skipped.push({ label, reason: cal });
                continue;
              }
              progress(`${label}: quantizing`);
              // auto measures its candidates tensor by tensor (src/quant/auto.ts), as quantize does.
              const { quantizer } = await prepareQuantizer(ckpt, plan, { importance, calibrated: cal, threads, signal: o.signal });
              const q = await quantizeInMemory(ckpt, plan, { quantizer, threads, keepValues: reference !== null, signal: o.signal });
              const total = { sumSqErr: 0, sumSqRef: 0, maxAbsErr: 0, count: 0 };
              for (const t of q.errors) {
                total.sumSqErr += t.sums.sumSqErr;
                total.sumSqRef += t.sums.sumSqRef;
                total.maxAbsErr = Math.max(total.maxAbsErr, t.sums.maxAbsErr);
                total.count += t.sums.count;
              }
              let modelResult: Divergence | null = null;
              if (reference) {
                progress(`${label}: perplexity`);
                const m = await LlamaModel.load(ckpt, async (t, v) => q.values.get(t.name) ?? v);
                modelResult = await reference.compare(m, threads);
              }
              let onnxruntime: Divergence | null | undefined;
              if (reference && format === 'onnx') {
                progress(`${label}: perplexity through ONNX Runtime`);
                // the quantizer prepared above: auto's and GPTQ's measured choices apply to the ONNX files too
                onnxruntime = await onnxRuntimeDivergence(ckpt, plan, reference, { quantizer, threads, signal: o.signal }).catch((e: unknown) => {
                  if (e instanceof QuantkitError && e.code === 'ERR_USAGE') return null; // onnxruntime-node is not installed
                  throw e;
                });
              }
              const est = estimateBase.dims ? await estimateModel(estimateBase, { scenario: 'inference', ...options }) : null;
              variants.push({
                label,
                bits,
                group_size: groupSize,
                mode: planned,
                method,
                format,
                bits_per_weight: plan.bitsPerQuantizedWeight,
                packed_bytes: plan.outputBytes,
                quantized_params: plan.quantizedParams,
                weight_error: weightError(total),
                tensors: q.errors.map((t) => ({ name: t.name, format: t.format, params: t.params, ...weightError(t.sums) })),
                predicted_memory: est ? { inference_peak_bytes: est.peak_bytes, weights_bytes: est.components.weights ?? 0 } : null,
                model: modelResult,
                ...(onnxruntime !== undefined ? { onnxruntime } : {}),
                pareto: { rel_rmse: false, perplexity: false },
              });
            }
    const rel = paretoFront(variants.map((v) => ({ x: v.bits_per_weight, y: v.weight_error.rel_rmse })));
    const withPpl = variants.filter((v) => v.model);
    const ppl = paretoFront(withPpl.map((v) => ({ x: v.bits_per_weight, y: v.model!.perplexity })));
    variants.forEach((v, i) => (v.pareto.rel_rmse = rel[i]!));
    withPpl.forEach((v, i) => (v.pareto.perplexity = ppl[i]!));
    return {
      model: ckpt.dir,
      source_params: estimateBase.params,
      source_bytes: ckpt.totalBytes,
      eval: evalInfo,
      eval_skipped: evalSkipped,
      variants,
      skipped,
    };
  } finally {
    await ckpt.close();
  }
}
