/**
 * compressed-tensors "pack-quantized" safetensors, the layout vLLM and transformers load:
 *   X.weight_packed      I32 [rows, ceil(cols*bits/32)]  values + 2^(bits-1), LSB first along the row
 *   X.weight_scale       model dtype [rows, cols/group]   positive scales
 *   X.weight_zero_point  I32 [ceil(rows*bits/32), cols/group]  asymmetric only, packed along dim 0
 *   X.weight_shape       I32 [ndim]                        the original shape
 * Symmetric scale = absmax / ((2^bits-1)/2) (absmax/7.5 for int4, as compressed-tensors computes it);
 * asymmetric: range [min(x,0), max(x,0)] over 2^bits-1 levels with a zero point.
 */
import { readdir, stat, copyFile, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Checkpoint, type CheckpointTensor, type WeightsStem, indexFileName } from '../checkpoint.js';
import { writeFileAtomic, temporaryName } from '../atomic-file.js';
import { rename } from 'node:fs/promises';
import { QuantkitError, ioError } from '../errors.js';
import type { KernelSpec } from '../native.js';
import { type ResolvedOptions, autoZeroPoint, kernelMethod, usesIq4nl } from '../options.js';
import { type FloatDtype, dtypeSize, shapeElements } from '../safetensors/dtypes.js';
import { SafetensorsWriter, type TensorEntry, predictSafetensorsSize } from '../safetensors/writer.js';
import { isJsonObject, parseStrictJson } from '../safetensors/strict-json.js';
import { type GenericDecision, type OutputFormat, type PlanEntry, type PlannedFile, type ReadBack, type ReadBackTensor, type Treatment, matrixView } from './format.js';
import { packedGroup, packedIntEncoding, packedLabel, packedParts } from './types/index.js';

const EMBEDDING_OR_HEAD = /(^|\.)(embed_tokens|wte|wpe|word_embeddings|tok_embeddings|embed_in|embed_out|lm_head|output|token_embedding|position_embedding)(\.|$)/;
/** Small files copied beside the weights so the output directory is a loadable model. */
export const COPIED_FILE = /^(.*\.(json|txt|model|tiktoken|py|md|jinja)|LICENSE.*|README.*|NOTICE.*|merges\.txt|vocab\..*)$/i;

const TORCH_DTYPES: Record<string, FloatDtype> = { bfloat16: 'BF16', float16: 'F16', float32: 'F32' };

export function modelDtype(ckpt: Checkpoint): FloatDtype | undefined {
  const d = ckpt.config?.torch_dtype ?? ckpt.config?.dtype;
  return typeof d === 'string' ? TORCH_DTYPES[d] : undefined;
}

/** The registry's label of a compressed-tensors spec (`int4 g32 sym`). */
const labelOf = (spec: KernelSpec, cols: number) => packedLabel(packedIntEncoding(spec.scheme), spec, cols);

/** The safetensors tensors one checkpoint tensor becomes: the encoding's parts, then its original shape. */
function outputTensors(t: CheckpointTensor, tr: Treatment): TensorEntry[] {
  if (tr.kind === 'keep') return [{ name: t.name, dtype: tr.outDtype, shape: t.shape }];
  const parts = packedParts(packedIntEncoding(tr.spec.scheme), tr.spec, tr.view.rows, tr.view.cols);
  return [...parts.map((p) => ({ name: `${t.name}${p.suffix}`, dtype: p.dtype, shape: p.shape })), { name: `${t.name}_shape`, dtype: 'I32', shape: [t.shape.length] }];
}

function entryBytes(entries: TensorEntry[]): number {
  return entries.reduce((s, e) => s + shapeElements(e.shape)! * dtypeSize(e.dtype), 0);
}

/** Packs signed zero points [rows, groups] along dim 0 into I32 [ceil(rows*bits/32), groups]. */
export function packZeroPoints(zeros: Int8Array, rows: number, groups: number, bits: number): Uint8Array {
  const perWord = 32 / bits;
  const words = new Uint32Array(Math.ceil(rows / perWord) * groups);
  const offset = 1 << (bits - 1);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < rows; r++) {
    const shift = (r % perWord) * bits;
    const base = Math.floor(r / perWord) * groups;
    for (let g = 0; g < groups; g++) words[base + g]! |= ((zeros[r * groups + g]! + offset) & mask) << shift;
  }
  return new Uint8Array(words.buffer);
}

export function unpackZeroPoints(packed: Uint8Array, rows: number, groups: number, bits: number): Int8Array {
  const perWord = 32 / bits;
  const words = new Uint32Array(packed.slice().buffer);
  const out = new Int8Array(rows * groups);
  const offset = 1 << (bits - 1);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < rows; r++) {
    const shift = (r % perWord) * bits;
    const base = Math.floor(r / perWord) * groups;
    for (let g = 0; g < groups; g++) out[r * groups + g] = ((words[base + g]! >>> shift) & mask) - offset;
  }
  return out;
}

/** Weights files keep the input's stem (model, or diffusers' diffusion_pytorch_model). */
function shardName(stem: WeightsStem, i: number, n: number): string {
  return n === 1 ? `${stem}.safetensors` : `${stem}-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

function moduleName(tensorName: string): string {
  return tensorName.replace(/\.weight$/, '');
}

function quantizationConfig(entries: PlanEntry[]): Record<string, unknown> {
  const groups = new Map<string, { targets: string[]; weights: Record<string, unknown> }>();
  const ignore: string[] = [];
  for (const e of entries) {
    const tr = e.treatment;
    if (tr.kind === 'keep') {
      if (e.tensor.shape.length >= 2 && e.tensor.name.endsWith('.weight')) ignore.push(moduleName(e.tensor.name));
      continue;
    }
    const perRow = tr.spec.group === tr.view.cols;
    const weights = {
      num_bits: tr.spec.bits,
      type: 'int',
      symmetric: tr.spec.scheme === 'int_sym',
      strategy: perRow ? 'channel' : 'group',
      group_size: perRow ? null : tr.spec.group,
      dynamic: false,
      actorder: null,
      observer: 'minmax',
      observer_kwargs: {},
      block_structure: null,
    };
    const key = JSON.stringify(weights);
    const g = groups.get(key) ?? { targets: [] as string[], weights };
    g.targets.push(moduleName(e.tensor.name));
    groups.set(key, g);
  }
  const config_groups: Record<string, unknown> = {};
  [...groups.values()].forEach((g, i) => {
    config_groups[`group_${i}`] = { targets: g.targets, weights: g.weights, input_activations: null, output_activations: null, format: 'pack-quantized' };
  });
  return {
    quant_method: 'compressed-tensors',
    format: 'pack-quantized',
    quantization_status: 'compressed',
    config_groups,
    ignore,
    kv_cache_scheme: null,
    sparsity_config: {},
    global_compression_ratio: null,
  };
}

/** Writes a planned file that is not weights: generated content, or a copy of a checkpoint file. */
export async function writeSmallFile(f: PlannedFile, dir: string): Promise<void> {
  if (f.content !== undefined) return writeFileAtomic(join(dir, f.name), f.content);
  if (!f.source) return;
  const tmp = temporaryName(join(dir, f.name));
  try {
    await copyFile(f.source, tmp);
    await rename(tmp, join(dir, f.name));
  } catch (e) {
    throw ioError('ERR_IO', f.source, e, 'cannot copy');
  }
}

/** The checkpoint's small files (tokenizer, generation config, license...) copied beside the weights. */
export async function filesToCopy(dir: string): Promise<PlannedFile[]> {
  const out: PlannedFile[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (name === 'config.json' || name.endsWith('.safetensors.index.json') || !COPIED_FILE.test(name)) continue;
    const source = join(dir, name);
    const st = await stat(source).catch(() => undefined);
    if (st?.isFile()) out.push({ name, bytes: st.size, kind: 'copy', source });
  }
  return out;
}

async function readTensorI32(ckpt: Checkpoint, t: CheckpointTensor): Promise<Int32Array> {
  const b = await ckpt.read(t);
  return new Int32Array(b.buffer, b.byteOffset, b.length / 4);
}

function autoScales(o: ResolvedOptions, dtype: FloatDtype): FloatDtype {
  return o.quantMethod === 'auto' ? 'F16' : dtype;
}

export const packedSafetensorsFormat: OutputFormat = {
  name: 'safetensors',

  checkOptions(o: ResolvedOptions) {
    if (o.quantMethod === 'hqq') throw new QuantkitError('ERR_USAGE', "--method hqq fits a fractional zero point, which compressed-tensors cannot store (its zero points are integers): use --format gguf --asym (Q4_1)");
    if (usesIq4nl(o.quantMethod)) throw new QuantkitError('ERR_USAGE', `--method ${o.quantMethod} writes llama.cpp's IQ4_NL blocks: use --format gguf (compressed-tensors has no non-linear code)`);
  },

  decide(t, generic: GenericDecision, o: ResolvedOptions, ckpt): Treatment {
    if ('keep' in generic) return { kind: 'keep', outDtype: t.dtype, reason: generic.keep };
    if (!t.name.endsWith('.weight')) return { kind: 'keep', outDtype: t.dtype, reason: 'not a module .weight (compressed-tensors quantizes module weights)' };
    // --method auto quantizes every matrix, the embedding and output head included (issue 18's default).
    if (!generic.explicit && o.quantMethod !== 'auto' && EMBEDDING_OR_HEAD.test(t.name))
      return { kind: 'keep', outDtype: t.dtype, reason: 'embedding or output head: compressed-tensors loaders quantize Linear layers and ignore lm_head (name it in --bits-for to quantize it)' };
    const view = matrixView(t.shape);
    const want = o.groupSize === 'row' ? view.cols : o.groupSize;
    const group = packedGroup(view.cols, want);
    const scheme = o.mode === 'asym' || autoZeroPoint(t.name, o) ? 'int_asym' : 'int_sym';
    const method = kernelMethod(o.quantMethod, scheme);
    const spec: KernelSpec = {
      scheme,
      bits: generic.bits,
      group,
      // auto: F16 scales (4.5 bits/weight for an f32 model too, and 3 more mantissa bits than BF16; a scale
      // beyond F16's range is refused with the tensor's name, not clipped).
      scaleDtype: o.scaleDtype ?? autoScales(o, modelDtype(ckpt) ?? (t.dtype as FloatDtype)),
      ...(method !== 'rtn' ? { method } : {}),
    };
    const note = group !== want
      ? `group ${want} does not divide rows of ${view.cols}: using ${group === view.cols ? 'one scale per row' : `groups of ${group}`}`
      : undefined;
    return { kind: 'quantize', spec, view, label: labelOf(spec, view.cols), ...(note ? { note } : {}) };
  },

  tensorBytes(t, tr) {
    return entryBytes(outputTensors(t, tr));
  },

  async layout(entries, ckpt, o) {
    const shards: PlanEntry[][] = [[]];
    let size = 0;
    for (const e of entries) {
      if (o.maxShardSize !== undefined && size > 0 && size + e.outputBytes > o.maxShardSize) {
        shards.push([]);
        size = 0;
      }
      shards[shards.length - 1]!.push(e);
      size += e.outputBytes;
    }
    const kept = new Set(entries.filter((e) => e.treatment.kind === 'keep').map((e) => e.tensor.name));
    const files: PlannedFile[] = shards.map((shard, i) => {
      const names = new Set(shard.map((e) => e.tensor.name));
      const metadata: Record<string, string> = { format: 'pt' };
      for (const [alias, target] of ckpt.aliases) if (kept.has(target) && names.has(target)) metadata[alias] = target;
      const tensors = shard.flatMap((e) => outputTensors(e.tensor, e.treatment));
      return { name: shardName(ckpt.weightsStem, i, shards.length), bytes: predictSafetensorsSize(tensors, metadata), kind: 'weights', tensors: [...names], metadata };
    });
    if (shards.length > 1) {
      const weight_map: Record<string, string> = {};
      for (const [i, shard] of shards.entries()) for (const e of shard) for (const t of outputTensors(e.tensor, e.treatment)) weight_map[t.name] = shardName(ckpt.weightsStem, i, shards.length);
      const content = JSON.stringify({ metadata: { total_size: entries.reduce((s, e) => s + e.outputBytes, 0) }, weight_map }, null, 2) + '\n';
      files.push({ name: indexFileName(ckpt.weightsStem), bytes: Buffer.byteLength(content), kind: 'index', content });
    }
    const config = { ...(ckpt.config ?? {}), quantization_config: quantizationConfig(entries) };
    const content = JSON.stringify(config, null, 2) + '\n';
    files.push({ name: 'config.json', bytes: Buffer.byteLength(content), kind: 'config', content });
    // A lone .safetensors file has no model directory whose files belong to it: nothing is copied.
    if (!ckpt.isSingleFile && !ckpt.shapesOnly) files.push(...(await filesToCopy(ckpt.dir)));
    return files;
  },

  async write(plan, dir, ctx) {
    const byName = new Map(plan.entries.map((e) => [e.tensor.name, e]));
    for (const f of plan.files) {
      ctx.signal?.throwIfAborted();
      if (f.kind === 'weights') {
        const entries = f.tensors!.map((n) => byName.get(n)!);
        const writer = await SafetensorsWriter.create(join(dir, f.name), entries.flatMap((e) => outputTensors(e.tensor, e.treatment)), f.metadata);
        try {
          for (const e of entries) {
            ctx.signal?.throwIfAborted();
            const m = await ctx.materialize(e);
            if (m.kind === 'keep') {
              await writer.write(e.tensor.name, m.bytes);
              continue;
            }
            const tr = e.treatment as Extract<Treatment, { kind: 'quantize' }>;
            await writer.write(`${e.tensor.name}_packed`, m.parts.data);
            await writer.write(`${e.tensor.name}_scale`, m.parts.scales!);
            if (tr.spec.scheme === 'int_asym')
              await writer.write(`${e.tensor.name}_zero_point`, packZeroPoints(m.parts.zeros!, tr.view.rows, tr.view.cols / tr.spec.group, tr.spec.bits));
            await writer.write(`${e.tensor.name}_shape`, new Uint8Array(Int32Array.from(e.tensor.shape).buffer));
          }
          await writer.finish();
        } catch (err) {
          await writer.abort();
          throw err;
        }
      } else await writeSmallFile(f, dir);
    }
  },

  async detect(dir) {
    try {
      const c = parseStrictJson(await readFile(join(dir, 'config.json'), 'utf8'));
      return isJsonObject(c) && isJsonObject(c.quantization_config) && c.quantization_config.format === 'pack-quantized';
    } catch {
      return false;
    }
  },

  async readBack(dir): Promise<ReadBack> {
    const ckpt = await Checkpoint.open(dir);
    try {
      const qc = ckpt.config?.quantization_config as { config_groups?: Record<string, { targets: string[]; weights: { num_bits: number; symmetric: boolean } }> } | undefined;
      const argsOf = new Map<string, { num_bits: number; symmetric: boolean }>();
      for (const g of Object.values(qc?.config_groups ?? {})) for (const t of g.targets) argsOf.set(t, g.weights);
      const tensors: ReadBackTensor[] = [];
      const file = (t: CheckpointTensor) => basename(t.file);
      const verifyError = (t: CheckpointTensor, m: string) => new QuantkitError('ERR_VERIFY', m, { file: t.file, tensor: t.name });
      for (const t of ckpt.tensors) {
        const m = /^(.*)_(packed|scale|zero_point|shape)$/.exec(t.name);
        if (!m || !ckpt.tensor(`${m[1]}_packed`)) {
          tensors.push({ name: t.name, kind: 'keep', dtype: t.dtype, shape: t.shape, bytes: t.bytes, readRange: (o, target) => ckpt.readRange(t, o, target) });
          continue;
        }
        if (m[2] !== 'packed') continue;
        const base = m[1]!;
        const scale = ckpt.tensor(`${base}_scale`);
        const shapeT = ckpt.tensor(`${base}_shape`);
        const zp = ckpt.tensor(`${base}_zero_point`);
        if (!scale || !shapeT) throw verifyError(t, `${file(t)} lacks ${base}_scale or ${base}_shape`);
        const args = argsOf.get(moduleName(base));
        if (!args) throw verifyError(t, `no config group of quantization_config targets ${moduleName(base)}`);
        if (shapeT.dtype !== 'I32' || scale.shape.length !== 2 || !['F16', 'BF16', 'F32'].includes(scale.dtype))
          throw verifyError(t, 'weight_shape or weight_scale has an unexpected dtype or rank');
        const shape = Array.from(await readTensorI32(ckpt, shapeT));
        if (shape.some((d) => d <= 0)) throw verifyError(t, `weight_shape ${JSON.stringify(shape)} is not a shape`);
        const view = matrixView(shape);
        const groups = scale.shape[1]!;
        const bits = args.num_bits as 4 | 8;
        const spec: KernelSpec = { scheme: args.symmetric ? 'int_sym' : 'int_asym', bits, group: view.cols / groups, scaleDtype: scale.dtype as FloatDtype };
        if (!Number.isInteger(spec.group) || t.dtype !== 'I32' || t.shape[0] !== view.rows || t.shape[1] !== Math.ceil((view.cols * bits) / 32) || scale.shape[0] !== view.rows)
          throw verifyError(t, `packed shapes do not match weight_shape ${JSON.stringify(shape)} with ${bits}-bit values`);
        if (!args.symmetric && !zp) throw verifyError(t, `asymmetric scheme but no ${base}_zero_point`);
        tensors.push({
          name: base,
          kind: 'quantize',
          spec,
          view,
          label: labelOf(spec, view.cols),
          bytes: t.bytes + scale.bytes + (zp?.bytes ?? 0) + shapeT.bytes,
          load: async (alloc) => ({
            data: await ckpt.read(t, alloc?.(t.bytes)),
            scales: await ckpt.read(scale, alloc?.(scale.bytes)),
            ...(zp && !args.symmetric ? { zeros: unpackZeroPoints(await ckpt.read(zp), view.rows, groups, bits) } : {}),
          }),
        });
      }
      return { format: 'safetensors', tensors, close: () => ckpt.close() };
    } catch (e) {
      await ckpt.close();
      throw e;
    }
  },
};

