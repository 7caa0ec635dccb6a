/**
 * Predicted vs measured for every published memory case: prints the table (and, with --write, puts it
 * in docs/estimates.md between the markers) with the error of each row and the mean absolute error per
 * scenario. `npm run estimates`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { CASES, type CaseResult, runCase } from './memory-cases.js';

const GiB = 2 ** 30;
const results: CaseResult[] = [];
for (const c of CASES) results.push(await runCase(c));

const fmt = (b: number, unit: string) => (unit === 'GB' ? `${(b / 1e9).toFixed(2)} GB` : unit === 'MiB' ? `${(b / 2 ** 20).toFixed(0)} MiB` : `${(b / GiB).toFixed(2)} GiB`);
const lines = ['| case | scenario | measured | predicted | error | tolerance | ok | assumptions / why |', '|---|---|---|---|---|---|---|---|'];
for (const r of results) {
  const u = r.c.measured_unit;
  const tol = `±${(r.setup.tolerance * 100).toFixed(0)}%${r.setup.absoluteTolerance ? ` or ${(r.setup.absoluteTolerance / GiB).toFixed(1)} GiB` : ''}`;
  lines.push(`| ${r.c.id} | ${r.c.scenario} | ${fmt(r.measured, u)} | ${fmt(r.predicted, u)} | ${(r.error * 100).toFixed(1)}% | ${tol} | ${r.withinTolerance ? 'yes' : '**no**'} | ${r.setup.why} |`);
}
lines.push('', '| scenario | rows | mean absolute error |', '|---|---|---|');
for (const s of ['inference', 'finetune', 'packed_size']) {
  const rs = results.filter((r) => r.c.scenario === s);
  lines.push(`| ${s} | ${rs.length} | ${((rs.reduce((a, r) => a + Math.abs(r.error), 0) / rs.length) * 100).toFixed(1)}% |`);
}
const table = lines.join('\n');
console.log(table);
if (process.argv.includes('--write')) {
  const file = new URL('../docs/estimates.md', import.meta.url);
  const doc = readFileSync(file, 'utf8');
  const start = '<!-- cases:start -->', end = '<!-- cases:end -->';
  const i = doc.indexOf(start), j = doc.indexOf(end);
  if (i < 0 || j < 0) throw new Error('docs/estimates.md lacks the case markers');
  writeFileSync(file, doc.slice(0, i + start.length) + '\n' + table + '\n' + doc.slice(j));
}
