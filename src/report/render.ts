/**
 * report.md and report.html from a sweep. Sizes are MiB (2^20 bytes) and memory GiB (2^30 bytes),
 * labelled as such everywhere. The HTML is one self-contained file: inline CSS and SVG, no script, no
 * network; every name that comes from the checkpoint is escaped.
 */
import { escapeXml, scatterChart, type ChartPoint } from './svg-chart.js';
import type { SweepResult, VariantResult } from './sweep.js';

const METHOD_COLORS: Record<string, string> = { auto: '#000000', rtn: '#7f7f7f', search: '#1f77b4', iq4nl: '#2ca02c', gptq: '#d62728', 'iq4nl-gptq': '#9467bd', hqq: '#ff7f0e' };
const MiB = 2 ** 20, GiB = 2 ** 30;

const mib = (n: number) => `${(n / MiB).toFixed(3)} MiB`;
const gib = (n: number | undefined) => (n === undefined ? '-' : `${(n / GiB).toFixed(3)} GiB`);
const num = (v: number | null | undefined, digits = 4) => (v === null || v === undefined ? '-' : v.toFixed(digits));

function points(r: SweepResult, y: (v: VariantResult) => number | null, pareto: (v: VariantResult) => boolean): ChartPoint[] {
  return r.variants
    .filter((v) => y(v) !== null)
    .map((v) => ({ x: v.bits_per_weight, y: y(v)!, label: v.label, series: v.method, shape: v.format === 'safetensors' ? 'circle' : 'square', pareto: pareto(v) }));
}

export function charts(r: SweepResult): string[] {
  const out = [
    scatterChart({
      id: 'chart-rel-rmse',
      title: 'Weight error vs size',
      xLabel: 'bits per quantized weight (scales included)',
      yLabel: 'relative RMSE of quantized weights',
      points: points(r, (v) => v.weight_error.rel_rmse, (v) => v.pareto.rel_rmse),
      colors: METHOD_COLORS,
    }),
  ];
  if (r.eval)
    out.push(scatterChart({
      id: 'chart-perplexity',
      title: 'Perplexity vs size',
      xLabel: 'bits per quantized weight (scales included)',
      yLabel: `perplexity (${r.eval.tokens} tokens)`,
      points: points(r, (v) => v.model?.perplexity ?? null, (v) => v.pareto.perplexity),
      reference: { y: r.eval.original.perplexity, label: `original ${r.eval.original.perplexity.toFixed(4)}` },
      colors: METHOD_COLORS,
    }));
  return out;
}

interface Table {
  head: string[];
  rows: string[][];
}

function summaryTable(r: SweepResult): Table {
  return {
    head: ['variant', 'bits/weight', 'packed size', 'predicted inference peak', 'rel. RMSE', 'SNR dB', 'perplexity', 'perplexity (ONNX Runtime)', 'KL mean', 'KL p99', 'top-1', 'Pareto (RMSE / PPL)'],
    rows: r.variants.map((v) => [
      v.label,
      v.bits_per_weight.toFixed(3),
      mib(v.packed_bytes),
      gib(v.predicted_memory?.inference_peak_bytes),
      num(v.weight_error.rel_rmse),
      num(v.weight_error.snr_db, 2),
      num(v.model?.perplexity),
      num(v.onnxruntime?.perplexity),
      num(v.model?.kl_mean, 5),
      num(v.model?.kl_p99, 4),
      v.model ? `${(v.model.top1_agreement * 100).toFixed(1)}%` : '-',
      `${v.pareto.rel_rmse ? 'yes' : 'no'} / ${v.model ? (v.pareto.perplexity ? 'yes' : 'no') : '-'}`,
    ]),
  };
}

/** Relative RMSE per tensor (rows) and variant (columns). */
function layerTable(r: SweepResult): Table {
  const names: string[] = [];
  for (const v of r.variants) for (const t of v.tensors) if (!names.includes(t.name)) names.push(t.name);
  return {
    head: ['tensor', ...r.variants.map((v) => v.label)],
    rows: names.map((n) => [n, ...r.variants.map((v) => {
      const t = v.tensors.find((x) => x.name === n);
      return t ? `${t.rel_rmse.toFixed(4)} (${t.format})` : 'kept';
    })]),
  };
}

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function mdTable(t: Table): string {
  return [`| ${t.head.map(mdCell).join(' | ')} |`, `|${t.head.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join('\n');
}

function htmlTable(t: Table, cls: string): string {
  return `<table class="${cls}"><thead><tr>${t.head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${t.rows
    .map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${escapeXml(c)}</th>` : `<td>${escapeXml(c)}</td>`)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function evalLine(r: SweepResult): string {
  if (!r.eval) return `Model-level evaluation skipped: ${r.eval_skipped ?? 'not requested'}.`;
  const e = r.eval;
  return `Perplexity on ${e.file} (${e.documents} documents, BOS + at most ${e.max_tokens} tokens each, ${e.tokens} predicted tokens); original: ${e.original.perplexity.toFixed(4)}. KL is KL(original || variant) per token in nats; top-1 is how often both predict the same next token.`;
}

const NOTES = [
  'bits/weight: stored bits per quantized weight, scales and zero points included; packed size: the exact bytes quantize writes (headers and kept tensors included).',
  'predicted inference peak: quantkit estimate for one GPU, batch 1, 2,048 tokens (weights + KV cache + activations + CUDA context).',
  'perplexity (ONNX Runtime): ONNX variants only, the written model_<dtype>.onnx run by onnxruntime-node on the same text; perplexity is quantkit\'s reference forward pass on the same weights.',
  'Methods: auto (the default) = per row the lowest measured output error of rtn, search and gptq, the tied embedding/head chosen by KL on the model\'s own text, IQ4_NL in GGUF (the search where the forward pass does not cover the model); rtn = round to nearest (ggml reference rules); search = least-squares scale search weighted by a weight-only importance estimate; iq4nl = the same search over llama.cpp\'s IQ4_NL code (GGUF); gptq / iq4nl-gptq = the same with GPTQ error feedback, calibrated on text the model writes itself (no calibration data); hqq = Q4_1 minimum fitted by HQQ\'s half-quadratic solver.',
];

export function renderMarkdown(r: SweepResult): string {
  const lines = [
    `# quantkit report: ${r.model}`,
    '',
    `${r.source_params.toLocaleString('en-US')} parameters, ${mib(r.source_bytes)} of safetensors.`,
    '',
    evalLine(r),
    '',
    '## Variants',
    '',
    mdTable(summaryTable(r)),
    '',
    ...NOTES.map((n) => `- ${n}`),
    '',
    '## Relative RMSE per tensor',
    '',
    mdTable(layerTable(r)),
    '',
  ];
  if (r.skipped.length) lines.push('## Combinations not run', '', ...r.skipped.map((s) => `- ${mdCell(s.label)}: ${mdCell(s.reason)}`), '');
  lines.push('Charts: report.html.', '');
  return lines.join('\n');
}

export function renderHtml(r: SweepResult): string {
  const css = `body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:12px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}th[scope=row],thead th{text-align:left;background:#f6f6f6}.charts{display:flex;flex-wrap:wrap;gap:16px}.chart text{font:12px system-ui,sans-serif}.chart .title{font-weight:600;font-size:14px}.wide{overflow-x:auto}`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>quantkit report: ${escapeXml(r.model)}</title><style>${css}</style></head>
<body>
<h1>quantkit report: ${escapeXml(r.model)}</h1>
<p>${escapeXml(`${r.source_params.toLocaleString('en-US')} parameters, ${mib(r.source_bytes)} of safetensors.`)}</p>
<p>${escapeXml(evalLine(r))}</p>
<div class="charts">
${charts(r).join('\n')}
</div>
<p>Circles: packed safetensors; squares: GGUF and ONNX. Colour: method. Red outline and line: the Pareto front (no other variant is both smaller and better).</p>
<h2>Variants</h2>
<div class="wide">${htmlTable(summaryTable(r), 'summary')}</div>
<ul>${NOTES.map((n) => `<li>${escapeXml(n)}</li>`).join('')}</ul>
<h2>Relative RMSE per tensor</h2>
<div class="wide">${htmlTable(layerTable(r), 'layers')}</div>
${r.skipped.length ? `<h2>Combinations not run</h2><ul>${r.skipped.map((s) => `<li>${escapeXml(`${s.label}: ${s.reason}`)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}
