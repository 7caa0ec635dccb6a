/**
 * GGUF output (raw container): quantized tensors as ggml Q8_0 / Q4_0 / Q4_1 blocks, bit-identical to
 * ggml's reference quantizers; 1-D tensors as F32; others in their dtype. Tensor names and config.json
 * are kept as they are in the checkpoint (the llama.cpp name mapping is a separate layer), so the file
 * is flagged `quantkit.runnable = false`.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AtomicFile } from '../atomic-file.js';
import { type Checkpoint, type CheckpointTensor, type ModelConfig, modelName } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import type { KernelScheme, KernelSpec } from '../native.js';
import { type GenericDecision, type PlanEntry, type ResolvedOptions, type Treatment, matrixView } from '../plan.js';
import { type Dtype, type FloatDtype, shapeElements } from '../safetensors/dtypes.js';
import { VERSION } from '../version.js';
import type { OutputFormat, ReadBack, ReadBackTensor } from './format.js';
import { GGML_TYPES, type GgmlType, GgufReader, type GgufKV, GgufValueType, alignUp, encodeGgufHeader, GGUF_DEFAULT_ALIGNMENT } from './gguf-container.js';

const SCHEME_TYPE: Record<'q8_0' | 'q4_0' | 'q4_1', GgmlType> = { q8_0: 'Q8_0', q4_0: 'Q4_0', q4_1: 'Q4_1' };
const TYPE_SCHEME: Partial<Record<GgmlType, KernelScheme>> = { Q8_0: 'q8_0', Q4_0: 'q4_0', Q4_1: 'q4_1' };
/** Safetensors dtypes GGUF can store as they are. */
const STORABLE: Partial<Record<Dtype, GgmlType>> = { F32: 'F32', F16: 'F16', BF16: 'BF16', I8: 'I8', I16: 'I16', I32: 'I32', I64: 'I64', F64: 'F64' };
const FILE_TYPES: Partial<Record<GgmlType, number>> = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, BF16: 32 };

function ggmlType(tr: Treatment): GgmlType {
  return tr.kind === 'quantize' ? SCHEME_TYPE[tr.spec.scheme as 'q8_0'] : STORABLE[tr.outDtype]!;
}

/** GGUF dims, innermost first. Quantized conv weights are stored as 2-D [cols, rows] so blocks run along ne0. */
function ggufDims(t: CheckpointTensor, tr: Treatment): number[] {
  if (t.shape.length === 0) return [1];
  if (tr.kind === 'quantize' && t.shape.length === 4) return [tr.view.cols, tr.view.rows];
  return [...t.shape].reverse();
}

function fileTypeOf(entries: PlanEntry[]): { id: number; name: string } {
  const weight = new Map<GgmlType, number>();
  const quantized = entries.some((e) => e.treatment.kind === 'quantize');
  for (const e of entries) {
    if (quantized !== (e.treatment.kind === 'quantize')) continue;
    const t = ggmlType(e.treatment);
    weight.set(t, (weight.get(t) ?? 0) + shapeElements(e.tensor.shape)!);
  }
  const [best] = [...weight.entries()].filter(([t]) => FILE_TYPES[t] !== undefined).sort((a, b) => b[1] - a[1]);
  return best ? { id: FILE_TYPES[best[0]]!, name: best[0] } : { id: 0, name: 'F32' };
}

export function ggufFileName(modelDir: string, entries: PlanEntry[]): string {
  return `${modelName(modelDir)}-${fileTypeOf(entries).name}.gguf`;
}

function metadata(entries: PlanEntry[], modelDir: string, config: ModelConfig | null, aliases: Map<string, string>): GgufKV[] {
  const S = GgufValueType.STRING, U32 = GgufValueType.U32;
  const kvs: GgufKV[] = [
    { key: 'general.architecture', type: S, value: typeof config?.model_type === 'string' ? config.model_type : 'unknown' },
    { key: 'general.name', type: S, value: modelName(modelDir) },
    { key: 'general.file_type', type: U32, value: fileTypeOf(entries).id },
    { key: 'general.alignment', type: U32, value: GGUF_DEFAULT_ALIGNMENT },
  ];
  if (entries.some((e) => e.treatment.kind === 'quantize')) kvs.push({ key: 'general.quantization_version', type: U32, value: 2 });
  kvs.push({ key: 'quantkit.version', type: S, value: VERSION });
  kvs.push({ key: 'quantkit.runnable', type: GgufValueType.BOOL, value: false });
  if (config) kvs.push({ key: 'quantkit.hf_config', type: S, value: JSON.stringify(config) });
  if (aliases.size) kvs.push({ key: 'quantkit.tensor_aliases', type: S, value: JSON.stringify(Object.fromEntries(aliases)) });
  return kvs;
}

function encode(entries: PlanEntry[], modelDir: string, config: ModelConfig | null, aliases: Map<string, string>) {
  return encodeGgufHeader(
    metadata(entries, modelDir, config, aliases),
    entries.map((e) => ({ name: e.tensor.name, ne: ggufDims(e.tensor, e.treatment), type: ggmlType(e.treatment), bytes: e.outputBytes })),
  );
}

export const ggmlFormat: OutputFormat = {
  name: 'gguf',

  checkOptions(o: ResolvedOptions) {
    const usage = (m: string) => new QuantkitError('ERR_USAGE', m);
    if (o.groupSize !== 32) throw usage(`GGUF's Q8_0/Q4_0/Q4_1 blocks hold 32 weights: --group-size must be 32 with --format gguf (got ${o.groupSize})`);
    if (o.mode === 'asym' && (o.bits === 8 || o.bitsFor.some((r) => r.bits === 8)))
      throw usage('GGUF has no asymmetric 8-bit weight type: use --sym for 8 bits (Q8_0)');
    if (o.scaleDtype !== undefined && o.scaleDtype !== 'F16') throw usage('GGUF block types store F16 scales: --scale-dtype must be F16 with --format gguf');
    if (o.maxShardSize !== undefined) throw usage('--max-shard-size applies to --format safetensors only');
  },

  decide(t, generic: GenericDecision, o: ResolvedOptions, _ckpt: Checkpoint): Treatment {
    if (t.shape.length > 4) throw new QuantkitError('ERR_PLAN', `${t.shape.length} dimensions: GGUF allows at most 4`, { file: t.file, tensor: t.name });
    const keep = (reason: string, dtype: Dtype): Treatment => {
      const outDtype = t.shape.length <= 1 && (dtype === 'F16' || dtype === 'BF16') ? 'F32' : dtype;
      if (!STORABLE[outDtype]) throw new QuantkitError('ERR_PLAN', `${t.dtype} cannot be stored in GGUF`, { file: t.file, tensor: t.name });
      return { kind: 'keep', outDtype, reason: outDtype !== dtype ? `${reason}; stored as F32 as llama.cpp expects for 1-D tensors` : reason };
    };
    if ('keep' in generic) return keep(generic.keep, t.dtype);
    const view = matrixView(t.shape);
    if (view.cols % 32 !== 0)
      return keep(`row length ${view.cols} is not a multiple of 32 (ggml block size): kept as ${t.dtype}`, t.dtype);
    const scheme = generic.bits === 8 ? 'q8_0' : o.mode === 'asym' ? 'q4_1' : 'q4_0';
    const spec: KernelSpec = { scheme, bits: generic.bits, group: 32, scaleDtype: 'F16' as FloatDtype };
    return { kind: 'quantize', spec, view, label: SCHEME_TYPE[scheme] };
  },

  tensorBytes(t, tr) {
    if (tr.kind === 'keep') return shapeElements(t.shape)! * GGML_TYPES[STORABLE[tr.outDtype]!][2];
    const [, blck, size] = GGML_TYPES[ggmlType(tr)];
    return (tr.view.rows * tr.view.cols / blck) * size;
  },

  async layout(entries, ckpt) {
    const { fileBytes } = encode(entries, ckpt.dir, ckpt.config, ckpt.aliases);
    return [{ name: ggufFileName(ckpt.dir, entries), bytes: fileBytes, kind: 'weights', tensors: entries.map((e) => e.tensor.name) }];
  },

  async write(plan, dir, ctx) {
    const f = plan.files[0]!;
    const { header, infos, fileBytes } = encode(plan.entries, plan.model, plan.config, plan.aliases);
    const out = await AtomicFile.create(join(dir, f.name));
    try {
      await out.write(header);
      for (const [i, e] of plan.entries.entries()) {
        ctx.signal?.throwIfAborted();
        const m = await ctx.materialize(e);
        const data = m.kind === 'keep' ? m.bytes : m.parts.data;
        if (data.length !== infos[i]!.bytes) throw new QuantkitError('ERR_PLAN', `produced ${data.length} bytes, planned ${infos[i]!.bytes}`, { tensor: e.tensor.name });
        await out.write(data);
        const pad = alignUp(data.length, GGUF_DEFAULT_ALIGNMENT) - data.length;
        if (pad) await out.write(new Uint8Array(pad));
      }
    } catch (err) {
      await out.abort();
      throw err;
    }
    await out.commit(fileBytes);
  },

  async detect(dir) {
    return (await readdir(dir).catch(() => [])).some((n) => n.endsWith('.gguf'));
  },

  async readBack(dir): Promise<ReadBack> {
    const names = (await readdir(dir)).filter((n) => n.endsWith('.gguf'));
    if (names.length !== 1) throw new QuantkitError('ERR_VERIFY', `expected one .gguf file, found ${names.length}`, { file: dir });
    const reader = await GgufReader.open(join(dir, names[0]!));
    const tensors: ReadBackTensor[] = reader.file.tensors.map((t) => {
      const scheme = TYPE_SCHEME[t.type];
      const shape = [...t.ne].reverse();
      if (!scheme) {
        const dtype = (Object.entries(STORABLE).find(([, g]) => g === t.type)?.[0] ?? 'F32') as Dtype;
        return { name: t.name, kind: 'keep', dtype, shape, bytes: t.bytes, readRange: (o, target) => reader.readRange(t, o, target) };
      }
      const cols = t.ne[0]!;
      const rows = t.ne.slice(1).reduce((a, b) => a * b, 1);
      const spec: KernelSpec = { scheme, bits: scheme === 'q8_0' ? 8 : 4, group: 32, scaleDtype: 'F16' };
      return { name: t.name, kind: 'quantize', spec, view: { rows, cols }, label: t.type, bytes: t.bytes, load: async (alloc) => ({ data: await reader.read(t, alloc?.(t.bytes)) }) };
    });
    return { format: 'gguf', tensors, close: () => reader.close() };
  },
};
