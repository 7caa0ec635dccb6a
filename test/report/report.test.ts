/**
 * `quantkit report` as users run it: a sweep on the bundled model, its three files, the Pareto marks,
 * escaping of names that come from a checkpoint, refusals; and report.html rendered by headless
 * Chromium (Debian's package; .ci/run installs it), checked for drawn charts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { paretoFront } from '../../src/report/index.js';
import { runSweep } from '../../src/report/sweep.js';
import { SafetensorsWriter } from '../../src/safetensors/writer.js';
import { CLI, STORIES260K, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-report-');
const out = join(dir, 'stories-report');
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir });

let report: any;
beforeAll(() => {
  const r = cli('report', STORIES260K, '--bits', '4,8', '--group-size', '32', '--mode', 'sym', '--method', 'rtn,search,iq4nl,gptq', '--format', 'gguf,safetensors', '-o', out, '--threads', '2', '--calibration-samples', '16');
  expect(r.stderr).toMatch(/evaluating the original on 21 documents/);
  expect(r.stderr.match(/calibrating GPTQ/g)).toHaveLength(1); // one calibration serves every GPTQ variant
  expect(r.status, r.stderr).toBe(0);
  report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
}, 180_000);

describe('quantkit report', () => {
  it('writes report.json, report.md and report.html, and nothing else', () => {
    expect(readdirSync(out).sort()).toEqual(['report.html', 'report.json', 'report.md']);
    expect(readdirSync(dir).filter((n) => n.includes('tmp'))).toEqual([]);
  });

  it('measures every valid combination and says why the others were not run', () => {
    const labels = report.variants.map((v: any) => v.label);
    expect(labels).toEqual([
      'gguf int4 g32 sym rtn', 'gguf int4 g32 sym search', 'gguf int4 g32 sym iq4nl', 'gguf int4 g32 sym gptq',
      'gguf int8 g32 sym rtn', 'gguf int8 g32 sym search', 'gguf int8 g32 sym gptq',
      'safetensors int4 g32 sym rtn', 'safetensors int4 g32 sym search', 'safetensors int4 g32 sym gptq',
      'safetensors int8 g32 sym rtn', 'safetensors int8 g32 sym search', 'safetensors int8 g32 sym gptq',
    ]);
    const skipped = Object.fromEntries(report.skipped.map((s: any) => [s.label, s.reason]));
    expect(skipped['gguf int8 g32 sym iq4nl']).toMatch(/4-bit code/);
    expect(skipped['safetensors int4 g32 sym iq4nl']).toMatch(/use --format gguf/);
    // The original, measured once with the bundled text.
    expect(report.eval.tokens).toBe(6989);
    expect(report.eval.original.perplexity).toBeCloseTo(3.3109, 3);
    for (const v of report.variants) {
      expect(v.model.tokens).toBe(6989);
      expect(v.model.kl_mean).toBeGreaterThan(0);
      expect(v.tensors.length).toBeGreaterThan(0);
      expect(v.predicted_memory.weights_bytes).toBeGreaterThan(0);
      expect(v.packed_bytes).toBeGreaterThan(v.predicted_memory.weights_bytes); // headers and kept tensors on top
    }
    const byLabel = (l: string) => report.variants.find((v: any) => v.label === l);
    // 8 bits barely moves the model; the IQ4_NL variant beats RTN at the same size.
    expect(byLabel('gguf int8 g32 sym rtn').model.kl_mean).toBeLessThan(0.01);
    expect(byLabel('gguf int4 g32 sym iq4nl').bits_per_weight).toBe(byLabel('gguf int4 g32 sym rtn').bits_per_weight);
    expect(byLabel('gguf int4 g32 sym iq4nl').model.kl_mean).toBeLessThan(byLabel('gguf int4 g32 sym rtn').model.kl_mean);
    // GPTQ: the same size as the search, closer to the original.
    for (const f of ['gguf', 'safetensors']) {
      expect(byLabel(`${f} int4 g32 sym gptq`).packed_bytes).toBe(byLabel(`${f} int4 g32 sym search`).packed_bytes);
      expect(byLabel(`${f} int4 g32 sym gptq`).model.kl_mean).toBeLessThan(byLabel(`${f} int4 g32 sym search`).model.kl_mean);
    }
  });

  it('marks exactly the Pareto-optimal variants', () => {
    const expectFront = (key: (v: any) => number, flag: (v: any) => boolean) => {
      const front = paretoFront(report.variants.map((v: any) => ({ x: v.bits_per_weight, y: key(v) })));
      expect(report.variants.map(flag)).toEqual(front);
      expect(front.some(Boolean)).toBe(true);
      // A marked variant is dominated by none; an unmarked one by some.
      for (const [i, v] of report.variants.entries()) {
        const dominated = report.variants.some((w: any) => w.bits_per_weight <= v.bits_per_weight && key(w) <= key(v) && (w.bits_per_weight < v.bits_per_weight || key(w) < key(v)));
        expect(dominated).toBe(!front[i]);
      }
    };
    expectFront((v) => v.weight_error.rel_rmse, (v) => v.pareto.rel_rmse);
    expectFront((v) => v.model.perplexity, (v) => v.pareto.perplexity);
    expect(paretoFront([{ x: 4, y: 2 }, { x: 4.5, y: 1 }, { x: 5, y: 1.5 }, { x: 4, y: 2 }])).toEqual([true, true, false, true]);
  });

  it('report.md holds the variant table and the per-tensor errors', () => {
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/\| gguf int4 g32 sym iq4nl \| 4\.500 \|/);
    expect(md).toMatch(/## Relative RMSE per tensor/);
    expect(md).toMatch(/\| model\.layers\.0\.mlp\.down_proj\.weight \|.*kept/); // 172-wide rows: no ggml block
    expect(md).toMatch(/original: 3\.310/);
  });

  it('refuses bad lists and an existing output, without touching it', () => {
    let r = cli('report', STORIES260K, '--bits', '5', '-o', join(dir, 'x'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--bits: '5' is not a valid value/);
    r = cli('report', STORIES260K, '--method', 'best', '-o', join(dir, 'x'));
    expect(r.status).toBe(2);
    r = cli('report', STORIES260K, '--method', 'search', '--seed', '3', '-o', join(dir, 'x'));
    expect(r.stderr).toMatch(/apply to --method auto, gptq or iq4nl-gptq/);
    r = cli('report', STORIES260K, '--bits', '4', '-o', out);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/already exists/);
    expect(readdirSync(out).sort()).toEqual(['report.html', 'report.json', 'report.md']);
    r = cli('report', STORIES260K, '--eval', join(dir, 'missing.txt'), '-o', join(dir, 'y'));
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/missing\.txt/);
    expect(existsSync(join(dir, 'y'))).toBe(false);
  });

  it('escapes tensor and model names in the HTML and Markdown', async () => {
    const model = join(dir, 'evil<model>');
    mkdirSync(model);
    const names = ['blk.<img src=x onerror=alert(1)>.weight', 'a|b&c"\'.weight'];
    const w = await SafetensorsWriter.create(join(model, 'model.safetensors'), names.map((name) => ({ name, dtype: 'F32', shape: [4, 64] })));
    const vals = new Float32Array(256).map((_, i) => Math.sin(i) * 0.1);
    for (const name of names) await w.write(name, new Uint8Array(vals.buffer));
    await w.finish();
    const rep = join(dir, 'evil-report');
    const r = cli('report', model, '--bits', '4', '--group-size', '32', '--mode', 'sym', '--method', 'rtn', '--format', 'safetensors', '--bits-for', '*=4', '-o', rep);
    expect(r.status, r.stderr).toBe(0);
    const html = readFileSync(join(rep, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<img/);
    expect(html).toContain('blk.&lt;img src=x onerror=alert(1)&gt;.weight');
    expect(html).toContain('a|b&amp;c&quot;&#39;.weight');
    expect(html).toContain('evil&lt;model&gt;');
    const md = readFileSync(join(rep, 'report.md'), 'utf8');
    expect(md).toContain('a\\|b&c');
    const json = JSON.parse(readFileSync(join(rep, 'report.json'), 'utf8'));
    expect(json.eval).toBeNull();
    expect(json.eval_skipped).toMatch(/not unknown|covers/);
  }, 60_000);
});

// ---- headless Chromium -------------------------------------------------------------------------

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

function chromium(args: string[]) {
  return spawnSync(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${join(dir, 'chromium-profile')}`, ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 2 ** 20 });
}

/** RGBA pixels of an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes). */
function decodePng(buf: Buffer): { width: number; height: number; pixel: (x: number, y: number) => [number, number, number] } {
  expect(buf.subarray(1, 4).toString()).toBe('PNG');
  let off = 8, width = 0, height = 0, colorType = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.subarray(off + 4, off + 8).toString();
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect(data[8]).toBe(8);
      colorType = data[9]!;
      expect(data[12]).toBe(0);
    } else if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const r = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= bpp ? px[y * stride + x - bpp]! : 0;
      const b = y > 0 ? px[(y - 1) * stride + x]! : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp]! : 0;
      const p = a + b - c;
      const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      px[y * stride + x] = (r + pred) & 0xff;
    }
  }
  return { width, height, pixel: (x, y) => [px[y * stride + x * bpp]!, px[y * stride + x * bpp + 1]!, px[y * stride + x * bpp + 2]!] };
}

describe.skipIf(!CHROMIUM && !process.env.CI)('report.html in headless Chromium', () => {
  it('draws both charts: SVG marks for every variant, the Pareto line, and coloured pixels on screen', () => {
    expect(CHROMIUM, 'chromium must be installed (.ci/run installs Debian\'s package)').toBeDefined();
    const url = `file://${join(out, 'report.html')}`;
    const dom = chromium(['--dump-dom', url]);
    expect(dom.status, dom.stderr).toBe(0);
    const svgs = dom.stdout.match(/<svg class="chart"[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs).toHaveLength(2);
    for (const svg of svgs) {
      expect((svg.match(/class="point( pareto-point)?"/g) ?? []).length).toBe(report.variants.length);
      expect(svg).toMatch(/class="pareto-line"/);
      expect((svg.match(/class="point pareto-point"/g) ?? []).length).toBeGreaterThan(0);
    }
    expect(svgs[1]).toMatch(/original 3\.31/);

    const png = join(dir, 'report.png');
    const shot = chromium(['--window-size=1500,900', '--hide-scrollbars', `--screenshot=${png}`, url]);
    expect(shot.status, shot.stderr).toBe(0);
    const img = decodePng(readFileSync(png));
    expect([img.width, img.height]).toEqual([1500, 900]);
    // The chart area (below the two text paragraphs): count coloured marks (method colours and the
    // red Pareto line) rather than grey text or white background.
    let coloured = 0, nonWhite = 0;
    for (let y = 150; y < 600; y++)
      for (let x = 0; x < 1500; x++) {
        const [r, g, b] = img.pixel(x, y);
        if (r < 245 || g < 245 || b < 245) nonWhite++;
        if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
      }
    expect(nonWhite).toBeGreaterThan(5000);
    expect(coloured).toBeGreaterThan(500);
  }, 120_000);
});

describe("report's 'default' mode: the file quantize writes without --sym/--asym", () => {
  it("gives auto's per-tensor zero points their own point and skips the methods whose default is sym", async () => {
    const r = await runSweep(STORIES260K, { bits: [4], groupSizes: [32], modes: ['sym', 'default'], methods: ['rtn', 'auto'], formats: ['safetensors'], weightsOnly: true, threads: 2 });
    expect(r.variants.map((v) => v.label)).toEqual(['safetensors int4 g32 sym rtn', 'safetensors int4 g32 sym auto', 'safetensors int4 g32 sym+asym (auto) auto']);
    expect(r.skipped).toEqual([{ label: 'safetensors int4 g32 default rtn', reason: 'the same plan as sym' }]);
    const [, sym, mixed] = r.variants;
    // Zero points cost bits (4.5 -> ~4.59 bits/weight) and lower the weight error.
    expect(mixed!.bits_per_weight).toBeGreaterThan(sym!.bits_per_weight);
    expect(mixed!.bits_per_weight).toBeLessThanOrEqual(4.6);
    expect(mixed!.weight_error.rel_rmse).toBeLessThan(sym!.weight_error.rel_rmse);
  }, 120_000);
});
