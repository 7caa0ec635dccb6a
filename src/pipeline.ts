/**
 * Diffusers pipelines: a folder with model_index.json and a folder per component (unet/, vae/,
 * text_encoder/, ...). Each component holding safetensors weights (diffusion_pytorch_model.safetensors or
 * model.safetensors, single or sharded with an index) is a checkpoint of its own, with its own config.json:
 * `quantize` plans, writes, verifies and reports it like any model, and its files keep their names.
 * Everything else that describes the pipeline (model_index.json, scheduler/, tokenizer/,
 * feature_extractor/, text files) is copied; files that are neither (weights in other formats, images)
 * are left out and listed. The whole folder is published at once, with one quantization-report.json for
 * the pipeline beside each component's own.
 *
 * --keep / --bits-for: GLOB applies to every component's tensors, COMPONENT/GLOB to one component's
 * (tensor names never hold a '/', so the first '/' separates the two): `--keep 'vae/*'` keeps the VAE
 * whole, `--bits-for 'unet/*attn*=8'` gives the UNet's attention 8 bits.
 */
import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Checkpoint, PIPELINE_INDEX, findWeights, readJsonObject } from './checkpoint.js';
import { QuantkitError, ioError } from './errors.js';
import { writeFileAtomic } from './atomic-file.js';
import { COPIED_FILE } from './formats/packed-safetensors.js';
import { type Plan, type QuantizeOptions, globToRegExp, planQuantization } from './plan.js';
import { REPORT_FILE, type QuantizeResult, type QuantizeRunOptions, defaultOutputName, jsonReplacer, quantize } from './quantize.js';
import { stagedOutput } from './staged-output.js';
import { type VerifyOptions, type VerifyResult, type VerifyTotals, verifyOutput } from './verify.js';
import { VERSION } from './version.js';

/** What a pipeline folder holds, as quantize treats it. */
export interface PipelineLayout {
  /** The pipeline folder (absolute). */
  dir: string;
  /** Component folders with safetensors weights: each is quantized. */
  components: string[];
  /** Files copied as they are (paths relative to the folder). */
  copies: { path: string; bytes: number }[];
  /** Files left out of the output, and why. */
  skipped: { path: string; reason: string }[];
}

/** Weights in formats quantkit does not read (and safetensors variants such as .fp16.safetensors). */
const OTHER_WEIGHTS = /\.(safetensors|bin|ckpt|pt|pth|msgpack|h5|onnx|onnx_data|gguf)$/i;

/** Reads a pipeline folder: which folders are components to quantize, which files are copied. */
export async function readPipeline(dir: string): Promise<PipelineLayout> {
  const root = resolve(dir);
  const index = await readJsonObject(join(root, PIPELINE_INDEX), PIPELINE_INDEX);
  // "unet": ["diffusers", "UNet2DConditionModel"]; "safety_checker": [null, null] means none.
  const declared = new Set(Object.entries(index).filter(([k, v]) => !k.startsWith('_') && Array.isArray(v) && v[0] !== null).map(([k]) => k));
  const layout: PipelineLayout = { dir: root, components: [], copies: [], skipped: [] };
  for (const name of await listDir(root)) {
    const path = join(root, name);
    const st = await stat(path).catch((e) => {
      throw ioError('ERR_CHECKPOINT', path, e);
    });
    if (!st.isDirectory()) {
      classifyFile(name, st.size, layout);
      continue;
    }
    if (await findWeights(path)) {
      layout.components.push(name);
      continue;
    }
    const weights = (await listDir(path)).filter((n) => OTHER_WEIGHTS.test(n));
    if (weights.length && declared.has(name))
      throw new QuantkitError('ERR_CHECKPOINT', `component '${name}' has no diffusion_pytorch_model.safetensors or model.safetensors (it has ${weights.join(', ')}): quantkit reads safetensors weights under those names only`, { file: path });
    await collect(root, name, layout);
  }
  if (!layout.components.length)
    throw new QuantkitError('ERR_CHECKPOINT', `${PIPELINE_INDEX} but no component folder with diffusion_pytorch_model.safetensors or model.safetensors`, { file: root });
  return layout;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  } catch (e) {
    throw ioError('ERR_CHECKPOINT', dir, e);
  }
}

function classifyFile(path: string, bytes: number, layout: PipelineLayout): void {
  const name = path.split('/').pop()!;
  if (COPIED_FILE.test(name)) layout.copies.push({ path, bytes });
  else layout.skipped.push({ path, reason: OTHER_WEIGHTS.test(name) ? 'weights outside a component folder quantkit reads' : 'not a configuration, tokenizer or text file' });
}

/** Every file under a folder that is not a component (scheduler/, tokenizer/, ...). */
async function collect(root: string, rel: string, layout: PipelineLayout): Promise<void> {
  for (const name of await listDir(join(root, rel))) {
    const path = `${rel}/${name}`;
    const st = await stat(join(root, path)).catch((e) => {
      throw ioError('ERR_CHECKPOINT', join(root, path), e);
    });
    if (st.isDirectory()) await collect(root, path, layout);
    else classifyFile(path, st.size, layout);
  }
}

/** Splits COMPONENT/GLOB; a glob without '/' names tensors of every component. */
function scope(glob: string): { component: RegExp; tensors: string } | null {
  const i = glob.indexOf('/');
  return i < 0 ? null : { component: globToRegExp(glob.slice(0, i)), tensors: glob.slice(i + 1) };
}

/** The --keep globs one component applies. */
export function componentGlobs(globs: readonly string[], component: string): string[] {
  return globs.flatMap((g) => {
    const s = scope(g);
    return !s ? [g] : s.component.test(component) ? [s.tensors] : [];
  });
}

/** The --bits-for rules (GLOB=BITS) one component applies. */
export function componentRules(rules: readonly string[], component: string): string[] {
  return rules.flatMap((r) => {
    const eq = r.lastIndexOf('=');
    if (eq < 0) return [r]; // not a rule: the planner says so
    return componentGlobs([r.slice(0, eq)], component).map((g) => `${g}${r.slice(eq)}`);
  });
}

/** The options one component is quantized with. */
function componentOptions<T extends QuantizeOptions>(o: T, component: string): T {
  return { ...o, ...(o.keep ? { keep: componentGlobs(o.keep, component) } : {}), ...(o.bitsFor ? { bitsFor: componentRules(o.bitsFor, component) } : {}) };
}

/** Refuses what a pipeline cannot take, before anything is read or written. */
function checkPipelineOptions(o: QuantizeOptions, layout: PipelineLayout): void {
  if ((o.format ?? 'safetensors') === 'gguf')
    throw new QuantkitError('ERR_USAGE', "--format gguf writes a model llama.cpp runs, and llama.cpp has no architecture for a diffusers pipeline's components: use --format gguf-raw (a GGUF container per component, tensor names and config.json kept) or --format safetensors");
  const named = [...(o.keep ?? []).map((g) => ['--keep', g]), ...(o.bitsFor ?? []).map((r) => ['--bits-for', r.slice(0, Math.max(0, r.lastIndexOf('=')))])];
  for (const [flag, glob] of named) {
    const s = scope(glob!);
    if (s && !layout.components.some((c) => s.component.test(c)))
      throw new QuantkitError('ERR_USAGE', `${flag} '${glob}' names no component of this pipeline (components: ${layout.components.join(', ')})`);
  }
}

export interface PipelinePlan {
  layout: PipelineLayout;
  components: { name: string; plan: Plan }[];
}

/** Every component's plan (exact file sizes), and what would be copied: nothing is written. */
export async function planPipeline(dir: string, options: QuantizeOptions): Promise<PipelinePlan> {
  const layout = await readPipeline(dir);
  checkPipelineOptions(options, layout);
  const components: PipelinePlan['components'] = [];
  for (const name of layout.components) {
    const dir = join(layout.dir, name);
    const ckpt = await Checkpoint.open(dir);
    try {
      components.push({ name, plan: await planQuantization(ckpt, componentOptions(options, name)) });
    } catch (e) {
      // Name the component when the planner could not (GGUF's 63-byte tensor names, for one).
      throw e instanceof QuantkitError && e.file === undefined && e.code !== 'ERR_USAGE' ? new QuantkitError(e.code, e.message, { file: dir, cause: e }) : e;
    } finally {
      await ckpt.close();
    }
  }
  return { layout, components };
}

export interface PipelineReport {
  quantkit: string;
  pipeline: 'diffusers';
  source: string;
  /** The published folder. */
  output: string;
  options: Record<string, unknown>;
  /** Each component: its folder, format, totals and own report (relative path). */
  components: { name: string; output: string; format: string; report: string; totals: VerifyTotals; sizes_equal_prediction: boolean; verification: 'fast' | 'full'; non_finite?: unknown[] }[];
  copied: { path: string; bytes: number }[];
  not_copied: { path: string; reason: string }[];
  /** Over all components; `outputBytes` counts the components' files and the copied files. */
  totals: { components: number; quantizedTensors: number; keptTensors: number; quantizedParams: number; quantizedBytes: number; outputBytes: number };
  /** Peak resident memory of this process when the report was written (bytes). */
  peak_rss_bytes: number;
}

export interface PipelineResult {
  output: string;
  components: ({ name: string } & QuantizeResult)[];
  report: PipelineReport;
}

/** Quantizes every component of a diffusers pipeline folder into one output folder, published whole. */
export async function quantizePipeline(dir: string, options: QuantizeRunOptions): Promise<PipelineResult> {
  // Every component planned first: a usage error or an unplannable component stops the run before any write.
  const { layout, components: planned } = await planPipeline(dir, options);
  const out = resolve(options.output ?? defaultOutputName(layout.dir, options, planned.map((c) => c.plan)));
  return stagedOutput(out, layout.dir, options.force ?? false, async (tmp) => {
    const components: PipelineResult['components'] = [];
    for (const name of layout.components) {
      options.signal?.throwIfAborted();
      const onProgress = options.onProgress;
      const r = await quantize(join(layout.dir, name), {
        ...componentOptions(options, name),
        output: join(tmp, name),
        finalOutput: join(out, name),
        force: false,
        ...(onProgress ? { onProgress: (p) => onProgress({ ...p, tensor: p.tensor ? `${name}/${p.tensor}` : name }) } : {}),
      });
      components.push({ name, ...r });
    }
    for (const c of layout.copies) {
      options.signal?.throwIfAborted();
      await copyInto(join(layout.dir, c.path), join(tmp, c.path), c.bytes);
    }
    const report = pipelineReport(layout, out, options, components);
    await writeFileAtomic(join(tmp, REPORT_FILE), JSON.stringify(report, jsonReplacer, 2) + '\n');
    return { output: out, components, report };
  });
}

async function copyInto(source: string, target: string, bytes: number): Promise<void> {
  try {
    await mkdir(dirname(target), { recursive: true });
    await copyFile(source, target);
  } catch (e) {
    throw ioError('ERR_IO', source, e, 'cannot copy');
  }
  const written = (await stat(target)).size;
  if (written !== bytes) throw new QuantkitError('ERR_VERIFY', `copied ${written} bytes, the file had ${bytes} when the run started`, { file: source });
}

function pipelineReport(layout: PipelineLayout, out: string, options: QuantizeRunOptions, components: PipelineResult['components']): PipelineReport {
  const { signal: _s, onProgress: _p, finalOutput: _f, ...plain } = options;
  const sum = (f: (t: VerifyTotals) => number) => components.reduce((n, c) => n + f(c.report.totals), 0);
  const copiedBytes = layout.copies.reduce((n, c) => n + c.bytes, 0);
  return {
    quantkit: VERSION,
    pipeline: 'diffusers',
    source: layout.dir,
    output: out,
    options: { ...plain, output: out },
    components: components.map((c) => ({
      name: c.name,
      output: c.report.output,
      format: c.report.format,
      report: `${c.name}/${REPORT_FILE}`,
      totals: c.report.totals,
      sizes_equal_prediction: c.report.sizes.every((s) => s.predicted === s.actual),
      verification: c.report.verification.mode,
      ...(c.report.non_finite ? { non_finite: c.report.non_finite } : {}),
    })),
    copied: layout.copies,
    not_copied: layout.skipped,
    totals: {
      components: components.length,
      quantizedTensors: sum((t) => t.quantizedTensors),
      keptTensors: sum((t) => t.keptTensors),
      quantizedParams: sum((t) => t.quantizedParams),
      quantizedBytes: sum((t) => t.quantizedBytes),
      outputBytes: sum((t) => t.outputBytes) + copiedBytes,
    },
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
}

export interface PipelineVerifyResult {
  output: string;
  source: string;
  components: { name: string; result: VerifyResult }[];
}

/** Verifies a quantized pipeline folder against its source: every component, and every copied file's size. */
export async function verifyPipeline(out: string, source: string, options: VerifyOptions = {}): Promise<PipelineVerifyResult> {
  const layout = await readPipeline(source);
  const output = resolve(out);
  const components: PipelineVerifyResult['components'] = [];
  for (const name of layout.components) components.push({ name, result: await verifyOutput(join(output, name), join(layout.dir, name), options) });
  for (const c of layout.copies) {
    const st = await stat(join(output, c.path)).catch(() => null);
    if (st?.size !== c.bytes) throw new QuantkitError('ERR_VERIFY', st ? `has ${st.size} bytes, the source ${c.bytes}` : 'is missing from the output', { file: join(output, c.path) });
  }
  return { output, source: layout.dir, components };
}
