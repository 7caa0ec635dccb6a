/** Human-readable plan and report summaries (the CLI's only output formatting). */
import { type Plan, planModeLabel } from '../plan.js';
import type { PipelinePlan, PipelineReport, PipelineResult, PipelineVerifyResult } from '../pipeline.js';
import type { QuantizationReport } from '../quantize.js';
import type { AutoSummary } from '../quant/auto.js';
import type { EvaluationOutcome } from '../eval/written-eval.js';
import { basename } from 'node:path';
import type { VerifyResult } from '../verify.js';
import { formatBytes } from '../units.js';

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

export function planText(plan: Plan): string {
  const lines: string[] = [];
  const o = plan.options;
  lines.push(`plan: ${plan.model}`);
  lines.push(`  format ${plan.format}, ${o.ggufType ? `gguf-type ${o.ggufType}${o.pure ? ' --pure' : ''}` : `${o.bits}-bit, group ${o.groupSize}, ${planModeLabel(plan)}`}${o.bitsFor.length ? `, bits-for ${o.bitsFor.map((r) => `${r.glob}=${r.bits}`).join(' ')}` : ''}`);
  const w = Math.min(60, Math.max(...plan.entries.map((e) => e.tensor.name.length)));
  for (const e of plan.entries) {
    const t = e.treatment;
    const what = t.kind === 'quantize' ? `${pad(t.label, 14)}` : pad(`keep ${t.outDtype}`, 14);
    const why = t.kind === 'quantize' ? (t.note ? `  (${t.note})` : '') : `  (${t.reason})`;
    lines.push(`  ${pad(e.tensor.name, w)}  ${pad(JSON.stringify(e.tensor.shape), 14)} ${pad(e.tensor.dtype, 5)} -> ${what} ${pad(String(e.outputBytes), 10)}${why}`);
  }
  lines.push('  files (exact sizes predicted before writing):');
  for (const f of plan.files) lines.push(`    ${pad(f.name, 40)} ${String(f.bytes).padStart(14)} bytes  ${formatBytes(f.bytes)}`);
  lines.push(`  source tensors ${formatBytes(plan.sourceBytes)}; output ${formatBytes(plan.outputBytes)}; ${plan.quantizedParams} weights quantized at ${plan.bitsPerQuantizedWeight.toFixed(3)} bits/weight`);
  return lines.join('\n');
}

function converted(r: VerifyResult): string {
  const c = r.tensors.filter((x) => x.treatment === 'converted');
  if (!c.length) return '';
  const worst = Math.max(...c.map((x) => x.relRmse));
  return ` (${c.length} converted to a narrower float, worst relative RMSE ${worst.toExponential(2)})`;
}

export function reportText(r: VerifyResult | QuantizationReport): string {
  const t = r.totals;
  const lines = [
    `${r.output}`,
    `  ${t.quantizedTensors} tensors quantized (${t.quantizedParams} weights, ${t.bitsPerQuantizedWeight.toFixed(3)} bits/weight), ${t.keptTensors} kept${converted(r)}`,
    `  quantized weights: relative RMSE ${t.relRmse.toFixed(5)}, RMSE ${t.rmse.toExponential(3)}, SNR ${t.snrDb.toFixed(2)} dB, max abs error ${t.maxAbsErr.toExponential(3)}`,
  ];
  lines.splice(1, 0, `  ${wholeFileLine(r)}`);
  if ('auto' in r && r.auto) lines.push(`  ${autoLine(r.auto)}`);
  if ('evaluation' in r && r.evaluation) lines.push(`  ${evaluationLine(r.evaluation)}`);
  const worst = [...r.tensors].filter((x) => x.treatment === 'quantized').sort((a, b) => b.relRmse - a.relRmse).slice(0, 3);
  if (worst.length) lines.push(`  worst: ${worst.map((x) => `${x.name} ${x.relRmse.toFixed(4)}`).join(', ')}`);
  if ('sizes' in r) {
    const ok = r.sizes.every((s) => s.predicted === s.actual);
    lines.push(`  files: ${r.sizes.length}, ${formatBytes(t.outputBytes)} written; sizes ${ok ? 'equal the prediction, byte for byte' : 'DIFFER from the prediction'}`);
  }
  return lines.join('\n');
}

/**
 * The whole file's bits per weight and the share of weights quantized, and the matrices left
 * unquantized with why: a "4-bit" file whose rows could not use blocks (6.94 bits/weight) must not
 * pass unnoticed.
 */
export function wholeFileLine(r: VerifyResult | QuantizationReport): string {
  const params = r.tensors.reduce((n, x) => n + x.params, 0);
  const t = r.totals;
  // Tensor data only: a file's metadata (tokenizer, headers) is not part of what the weights cost.
  const bpw = params ? (r.tensors.reduce((n, x) => n + x.bytes, 0) * 8) / params : 0;
  const keptMatrices = r.tensors.filter((x) => x.treatment !== 'quantized' && x.shape.length >= 2);
  const keptParams = keptMatrices.reduce((n, x) => n + x.params, 0);
  const reasons = 'plan' in r ? new Map(r.plan.filter((p) => p.treatment === 'kept').map((p) => [p.name, (p as { reason?: string }).reason ?? ''])) : new Map<string, string>();
  const why = [...new Set(keptMatrices.map((x) => reasons.get(x.source ?? x.name) ?? reasons.get(x.name) ?? x.format))].filter(Boolean);
  const head = `whole file: ${bpw.toFixed(2)} bits/weight over all ${params} weights (tensor data); ${params ? ((100 * t.quantizedParams) / params).toFixed(1) : '0.0'}% of weights quantized`;
  if (!keptMatrices.length) return `${head}; every matrix quantized`;
  return `${head}; ${keptMatrices.length} ${keptMatrices.length === 1 ? 'matrix' : 'matrices'} (${((100 * keptParams) / params).toFixed(1)}% of weights) NOT quantized: ${keptMatrices.slice(0, 3).map((x) => `${x.name} ${x.format}`).join(', ')}${keptMatrices.length > 3 ? ', ...' : ''}${why.length ? ` (${why.slice(0, 2).join('; ')})` : ''}`;
}

/** The written file's perplexity beside the original's, or why it was not measured. */
export function evaluationLine(e: EvaluationOutcome): string {
  if ('skipped' in e) return `perplexity: not measured (${e.skipped})`;
  return `perplexity ${e.perplexity.toFixed(4)} (original ${e.original_perplexity.toFixed(4)}; KL ${e.kl_mean.toFixed(4)}, top-1 agreement ${(100 * e.top1_agreement).toFixed(1)}%) on ${basename(e.file)}, ${e.tokens} tokens, read back from the written file (${e.seconds.toFixed(1)} s)`;
}

function autoLine(a: AutoSummary): string {
  if (a.fallback) return a.fallback;
  const total = Object.values(a.rows).reduce((x, y) => x + y, 0);
  const rows = Object.entries(a.rows).sort((x, y) => y[1] - x[1]).map(([k, n]) => `${k} ${((100 * n) / total).toFixed(0)}%`).join(', ');
  const tied = a.tied ? `; tied ${a.tied.name}: KL ${a.tied.kl.toFixed(4)} against RTN's ${a.tied.rtn_kl.toFixed(4)} on the model's own text` : '';
  return `method auto: rows by lowest measured error: ${rows}${tied}`;
}

export function planJson(plan: Plan) {
  return {
    model: plan.model,
    format: plan.format,
    options: { ...plan.options, bitsFor: plan.options.bitsFor.map((r) => `${r.glob}=${r.bits}`) },
    tensors: plan.entries.map((e) => ({
      name: e.tensor.name,
      shape: e.tensor.shape,
      dtype: e.tensor.dtype,
      treatment: e.treatment.kind === 'quantize' ? 'quantized' : 'kept',
      format: e.treatment.kind === 'quantize' ? e.treatment.label : e.treatment.outDtype,
      bytes: e.outputBytes,
      ...(e.treatment.kind === 'keep' ? { reason: e.treatment.reason } : e.treatment.note ? { note: e.treatment.note } : {}),
    })),
    files: plan.files.map((f) => ({ name: f.name, bytes: f.bytes, kind: f.kind })),
    sourceBytes: plan.sourceBytes,
    outputBytes: plan.outputBytes,
    quantizedParams: plan.quantizedParams,
    bitsPerQuantizedWeight: plan.bitsPerQuantizedWeight,
  };
}

/** What a pipeline's output holds besides its components. */
function pipelineFiles(p: { copied: { path: string }[]; not_copied: { path: string; reason: string }[] }): string[] {
  const lines = [`  copied as they are: ${p.copied.map((c) => c.path).join(', ') || 'nothing'}`];
  if (p.not_copied.length) lines.push(`  left out: ${p.not_copied.map((c) => `${c.path} (${c.reason})`).join(', ')}`);
  return lines;
}

export function pipelinePlanText(p: PipelinePlan): string {
  const parts = p.components.map((c) => `[${c.name}] ${planText(c.plan)}`);
  const bytes = p.components.reduce((n, c) => n + c.plan.outputBytes, 0) + p.layout.copies.reduce((n, c) => n + c.bytes, 0);
  parts.push([`diffusers pipeline ${p.layout.dir}: ${p.components.length} components (${p.layout.components.join(', ')}), output ${formatBytes(bytes)}`, ...pipelineFiles({ copied: p.layout.copies, not_copied: p.layout.skipped })].join('\n'));
  return parts.join('\n\n');
}

export function pipelinePlanJson(p: PipelinePlan) {
  return { pipeline: p.layout.dir, components: p.components.map((c) => ({ component: c.name, ...planJson(c.plan) })), copied: p.layout.copies, not_copied: p.layout.skipped };
}

export function pipelineReportText(r: PipelineReport, components: PipelineResult['components']): string {
  const t = r.totals;
  return [
    ...components.map((c) => `[${c.name}] ${reportText(c.report)}`),
    `diffusers pipeline: ${t.components} components, ${t.quantizedTensors} tensors quantized (${t.quantizedParams} weights), ${t.keptTensors} kept; ${formatBytes(t.outputBytes)} in all`,
    ...pipelineFiles(r),
  ].join('\n');
}

export function pipelineVerifyText(r: PipelineVerifyResult): string {
  return r.components.map((c) => `[${c.name}] ${reportText(c.result)}`).join('\n');
}
