/**
 * Scatter charts as inline SVG (no script, no network): bits per weight on x, a loss metric on y, one
 * mark per variant (colour = method, shape = format), the Pareto front joined by a line, an optional
 * horizontal reference (the original's perplexity). Every text is escaped.
 */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface ChartPoint {
  x: number;
  y: number;
  label: string;
  series: string;
  shape: 'circle' | 'square';
  pareto: boolean;
}

export interface ChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  points: ChartPoint[];
  reference?: { y: number; label: string };
  /** Colour per series name. */
  colors: Record<string, string>;
}

const W = 700, H = 400, M = { left: 70, right: 140, top: 36, bottom: 54 };

/** About five round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2);
}

/** Tick labels with as many decimals as the step needs (4.500, 4.501, ... when the range is narrow). */
function tickLabels(values: number[]): string[] {
  if (values.length < 2) return values.map(fmt);
  const step = Math.abs(values[1]! - values[0]!);
  const decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10(step) + 1e-9) + (Number((step / 10 ** Math.floor(Math.log10(step))).toFixed(6)) === 2.5 ? 1 : 0)));
  return values.map((v) => v.toFixed(decimals));
}

export function scatterChart(c: ChartSpec): string {
  const ys = c.points.map((p) => p.y).concat(c.reference ? [c.reference.y] : []);
  const xs = c.points.map((p) => p.x);
  const pad = (lo: number, hi: number) => {
    const d = hi - lo || Math.abs(hi) * 0.1 || 1;
    return [lo - d * 0.08, hi + d * 0.08] as const;
  };
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const px = (x: number) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const out: string[] = [];
  out.push(`<svg class="chart" id="${escapeXml(c.id)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(c.title)}">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" class="title">${escapeXml(c.title)}</text>`);
  // axes and grid
  out.push(`<g class="axis">`);
  out.push(`<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="#333"/>`);
  const xt = ticks(x0, x1), xl = tickLabels(xt);
  xt.forEach((t, i) => {
    const x = px(t).toFixed(1);
    out.push(`<line x1="${x}" y1="${H - M.bottom}" x2="${x}" y2="${H - M.bottom + 5}" stroke="#333"/><text x="${x}" y="${H - M.bottom + 18}" text-anchor="middle">${xl[i]}</text>`);
  });
  const yt = ticks(y0, y1), yl = tickLabels(yt);
  yt.forEach((t, i) => {
    const y = py(t).toFixed(1);
    out.push(`<line x1="${M.left}" y1="${y}" x2="${W - M.right}" y2="${y}" stroke="#e5e5e5"/><text x="${M.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${yl[i]}</text>`);
  });
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 14}" text-anchor="middle">${escapeXml(c.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(c.yLabel)}</text>`);
  out.push(`</g>`);
  if (c.reference) {
    const y = py(c.reference.y).toFixed(1);
    out.push(`<g class="reference"><line x1="${M.left}" y1="${y}" x2="${W - M.right}" y2="${y}" stroke="#888" stroke-dasharray="6 4"/><text x="${W - M.right - 4}" y="${Number(y) - 6}" text-anchor="end" fill="#555">${escapeXml(c.reference.label)}</text></g>`);
  }
  const front = c.points.filter((p) => p.pareto).sort((a, b) => a.x - b.x);
  if (front.length > 1)
    out.push(`<polyline class="pareto-line" fill="none" stroke="#d62728" stroke-width="2" points="${front.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`);
  for (const p of c.points) {
    const x = px(p.x), y = py(p.y);
    const color = c.colors[p.series] ?? '#444';
    const cls = p.pareto ? 'point pareto-point' : 'point';
    const stroke = p.pareto ? ' stroke="#d62728" stroke-width="2.5"' : ' stroke="#222" stroke-width="0.8"';
    const title = `<title>${escapeXml(`${p.label}: ${fmt(p.x)} bits/weight, ${p.y.toPrecision(4)}`)}</title>`;
    out.push(p.shape === 'square'
      ? `<rect class="${cls}" x="${(x - 6).toFixed(1)}" y="${(y - 6).toFixed(1)}" width="12" height="12" fill="${color}"${stroke}>${title}</rect>`
      : `<circle class="${cls}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="6.5" fill="${color}"${stroke}>${title}</circle>`);
  }
  // legend
  const series = Object.keys(c.colors).filter((s) => c.points.some((p) => p.series === s));
  series.forEach((s, i) => {
    const y = M.top + 8 + i * 18;
    out.push(`<g class="legend"><circle cx="${W - M.right + 20}" cy="${y}" r="5" fill="${c.colors[s]}"/><text x="${W - M.right + 30}" y="${y}" dominant-baseline="middle">${escapeXml(s)}</text></g>`);
  });
  const ly = M.top + 8 + series.length * 18;
  out.push(`<g class="legend"><line x1="${W - M.right + 14}" y1="${ly}" x2="${W - M.right + 26}" y2="${ly}" stroke="#d62728" stroke-width="2"/><text x="${W - M.right + 30}" y="${ly}" dominant-baseline="middle">Pareto front</text></g>`);
  out.push(`<g class="legend"><circle cx="${W - M.right + 20}" cy="${ly + 18}" r="5" fill="none" stroke="#222"/><text x="${W - M.right + 30}" y="${ly + 18}" dominant-baseline="middle">safetensors</text></g>`);
  out.push(`<g class="legend"><rect x="${W - M.right + 15}" y="${ly + 31}" width="10" height="10" fill="none" stroke="#222"/><text x="${W - M.right + 30}" y="${ly + 36}" dominant-baseline="middle">GGUF</text></g>`);
  out.push(`</svg>`);
  return out.join('\n');
}
