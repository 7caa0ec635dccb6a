/**
 * The README's accuracy-vs-size charts: for each bundled model, `quantkit report`'s sweep over every
 * 4-bit method in the mode quantize gives it without --sym/--asym (the default auto with its per-tensor
 * zero points in packed safetensors, RTN and each other method symmetric) in packed safetensors and GGUF,
 * every matrix quantized (the embedding/head named in --bits-for, as auto does by itself), drawn as the
 * report's perplexity chart (with the original's perplexity as the reference line) and rendered to PNG
 * by headless Chromium:
 *
 *   npx tsx scripts/quality-charts.ts          # writes docs/quality-<model>.png and docs/quality-charts.json
 *
 * Same as `quantkit report models/<model> --bits 4 --group-size 32 --mode default --format safetensors,gguf
 * --bits-for '*embed_tokens*=4' --bits-for 'lm_head*=4'`, chart only.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { charts } from '../src/report/render.js';
import { runSweep } from '../src/report/sweep.js';
import { QUANT_METHODS } from '../src/options.js';

const ROOT = join(import.meta.dirname, '..');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!CHROMIUM) throw new Error('headless Chromium is needed to render the charts (/usr/bin/chromium)');

const summary: Record<string, unknown> = {};
const work = await mkdtemp(join(tmpdir(), 'quantkit-charts-'));
try {
  for (const model of ['stories260k', 'tinystories-656k']) {
    const t0 = Date.now();
    const r = await runSweep(join(ROOT, 'models', model), {
      bits: [4], groupSizes: [32], modes: ['default'], methods: QUANT_METHODS.filter((m) => m !== 'hqq'), formats: ['safetensors', 'gguf'],
      bitsFor: ['*embed_tokens*=4', 'lm_head*=4'], threads: 2, onProgress: (m) => console.error(`${model}: ${m}`),
    });
    const svg = charts(r).find((c) => c.includes('chart-perplexity'))!.replaceAll('Perplexity vs size', `${model}: perplexity vs size, every matrix 4-bit (dashed: the original)`);
    const html = join(work, `${model}.html`);
    await writeFile(html, `<!doctype html><html><head><style>body{margin:0;font:12px sans-serif}.title{font-weight:bold;font-size:14px}</style></head><body>${svg}</body></html>`);
    const png = join(ROOT, 'docs', `quality-${model}.png`);
    const out = spawnSync(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--user-data-dir=${join(work, 'profile')}`, `--screenshot=${png}`, '--window-size=700,400', `file://${html}`], { encoding: 'utf8', timeout: 60_000 });
    if (!existsSync(png)) throw new Error(`chromium did not render ${png}: ${out.stderr}`);
    summary[model] = { original: r.eval?.original.perplexity, seconds: (Date.now() - t0) / 1000, variants: r.variants.map((v) => ({ label: v.label, bits_per_weight: v.bits_per_weight, perplexity: v.model?.perplexity, kl: v.model?.kl_mean })), skipped: r.skipped };
    console.log(model, JSON.stringify(summary[model], null, 1));
  }
  await writeFile(join(ROOT, 'docs', 'quality-charts.json'), JSON.stringify(summary, null, 1) + '\n');
} finally {
  await rm(work, { recursive: true, force: true });
}
