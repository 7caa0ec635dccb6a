/**
 * Predicted vs measured for every published memory case, development and held-out sets: prints the
 * tables (and, with --write, puts them in docs/estimates.md between the markers) with each row's error
 * and the mean absolute error per scenario class. `npm run estimates`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { CASES, CASE_CLASSES, type CaseResult, HELD_OUT, type MemoryCase, caseClass, runCase } from './memory-cases.js';

const GiB = 2 ** 30;
const fmt = (b: number, unit: string) => (unit === 'GB' ? `${(b / 1e9).toFixed(2)} GB` : unit === 'MiB' ? `${(b / 2 ** 20).toFixed(0)} MiB` : `${(b / GiB).toFixed(2)} GiB`);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

async function table(cases: MemoryCase[]): Promise<{ rows: string[]; results: CaseResult[] }> {
  const rows = ['| case | class | measured | predicted | error | tolerance | ok | assumptions / why |', '|---|---|---|---|---|---|---|---|'];
  const results: CaseResult[] = [];
  for (const c of cases) {
    const u = c.measured_unit;
    if (c.excluded) {
      rows.push(`| ${c.id} | ${caseClass(c)} | ${c.measured_value} ${u} | - | - | - | excluded | ${c.excluded} |`);
      continue;
    }
    const r = await runCase(c);
    results.push(r);
    const tol = `±${(r.setup.tolerance * 100).toFixed(0)}%${r.setup.absoluteTolerance ? ` or ${(r.setup.absoluteTolerance / GiB).toFixed(1)} GiB` : ''}`;
    rows.push(`| ${c.id} | ${caseClass(c)} | ${fmt(r.measured, u)} | ${fmt(r.predicted, u)} | ${pct(r.error)} | ${tol} | ${r.withinTolerance ? 'yes' : '**no**'} | ${r.setup.why} |`);
  }
  return { rows, results };
}

/** Mean absolute error per class on both sets, and over all single-GPU and multi-GPU fine-tuning rows. */
function summary(dev: CaseResult[], held: CaseResult[]): string[] {
  const mae = (rs: CaseResult[]) => (rs.length ? pct(rs.reduce((a, r) => a + Math.abs(r.error), 0) / rs.length) : '-');
  const cell = (rs: CaseResult[]) => (rs.length ? `${mae(rs)} (${rs.length})` : '-');
  const lines = ['| class | development: MAE (rows) | held-out: MAE (rows) |', '|---|---|---|'];
  for (const k of CASE_CLASSES) {
    const d = dev.filter((r) => caseClass(r.c) === k);
    const h = held.filter((r) => caseClass(r.c) === k);
    if (d.length || h.length) lines.push(`| ${k} | ${cell(d)} | ${cell(h)} |`);
  }
  const single = (r: CaseResult) => ['lora', 'qlora', 'full'].includes(caseClass(r.c));
  const multi = (r: CaseResult) => ['fsdp', 'zero3', 'tp-pp'].includes(caseClass(r.c));
  lines.push(`| fine-tuning, one GPU | ${cell(dev.filter(single))} | ${cell(held.filter(single))} |`);
  lines.push(`| fine-tuning, several GPUs | ${cell(dev.filter(multi))} | ${cell(held.filter(multi))} |`);
  return lines;
}

const dev = await table(CASES);
const held = await table(HELD_OUT);
const text = [
  '### Development set (tuned on)', '', ...dev.rows, '',
  '### Held-out set (never tuned on)', '', ...held.rows, '',
  '### Mean absolute error per class', '', ...summary(dev.results, held.results),
].join('\n');
console.log(text);
if (process.argv.includes('--write')) {
  const file = new URL('../docs/estimates.md', import.meta.url);
  const doc = readFileSync(file, 'utf8');
  const start = '<!-- cases:start -->', end = '<!-- cases:end -->';
  const i = doc.indexOf(start), j = doc.indexOf(end);
  if (i < 0 || j < 0) throw new Error('docs/estimates.md lacks the case markers');
  writeFileSync(file, doc.slice(0, i + start.length) + '\n' + text + '\n' + doc.slice(j));
}
