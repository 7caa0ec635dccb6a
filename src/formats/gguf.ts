/**
 * GGUF output, in two forms:
 *  - `gguf` (runnable): llama.cpp's tensor names, hyper-parameters and tokenizer for the architectures of
 *    gguf-arch.ts, the tensors its converter changes changed the same way; llama.cpp loads and runs it.
 *  - `gguf-raw`: a plain container keeping the checkpoint's tensor names and config.json
 *    (`quantkit.runnable = false`), for any architecture.
 * Quantized tensors are ggml Q8_0 / Q4_0 / Q4_1 blocks, bit-identical to ggml's reference quantizers.
 *
 * Types per tensor (runnable): 1-D tensors F32 (as llama.cpp expects); 2-D weights in the file type
 * (--gguf-type, else Q4_0/Q4_1/Q8_0 from --bits/--asym); rows that are not whole 32-weight blocks fall
 * back to F16 (F32 if a value does not fit F16), and the plan says so. The 'mobile' mix: Q4_0, with the
 * output head (or the tied embedding, which is the output head) and, on the layers llama.cpp's Q4_K_M
 * recipe favours (the first and last eighth and every third in between), attn_v and ffn_down in Q8_0.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AtomicFile } from '../atomic-file.js';
import { type Checkpoint, type CheckpointTensor, type ModelConfig, modelName } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import type { KernelScheme, KernelSpec } from '../native.js';
import { type GenericDecision, type PlanEntry, type ResolvedOptions, type Treatment, kernelMethod, matrixView, usesIq4nl } from '../plan.js';
import { type Dtype, type FloatDtype, shapeElements } from '../safetensors/dtypes.js';
import { isJsonObject, parseStrictJson } from '../safetensors/strict-json.js';
import { VERSION } from '../version.js';
import type { OutputFormat, PlannedFile, ReadBack, ReadBackTensor } from './format.js';
import { type GgufArchitecture, ggufArchitecture, moreBits } from './gguf-arch.js';
import { GGML_TYPES, type GgmlType, GgufReader, type GgufKV, GgufValueType, alignUp, encodeGgufHeader, GGUF_DEFAULT_ALIGNMENT } from './gguf-container.js';
import { ggufTokenizerMetadata } from './gguf-tokenizer.js';

const SCHEME_TYPE: Record<'q8_0' | 'q4_0' | 'q4_1' | 'iq4_nl', GgmlType> = { q8_0: 'Q8_0', q4_0: 'Q4_0', q4_1: 'Q4_1', iq4_nl: 'IQ4_NL' };
const TYPE_SCHEME: Partial<Record<GgmlType, KernelScheme>> = { Q8_0: 'q8_0', Q4_0: 'q4_0', Q4_1: 'q4_1', IQ4_NL: 'iq4_nl' };
/** Safetensors dtypes GGUF can store as they are. */
const STORABLE: Partial<Record<Dtype, GgmlType>> = { F32: 'F32', F16: 'F16', BF16: 'BF16', I8: 'I8', I16: 'I16', I32: 'I32', I64: 'I64', F64: 'F64' };
const FILE_TYPES: Partial<Record<GgmlType, number>> = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, IQ4_NL: 25, BF16: 32 };
/** Metadata key mapping a runnable file's tensor names to the checkpoint's (verify reads it). */
export const SOURCES_KEY = 'quantkit.sources';

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
    if (quantized !== (e.treatment.kind === 'quantize') || e.tensor.shape.length < 2) continue;
    const t = ggmlType(e.treatment);
    weight.set(t, (weight.get(t) ?? 0) + shapeElements(e.tensor.shape)!);
  }
  const [best] = [...weight.entries()].filter(([t]) => FILE_TYPES[t] !== undefined).sort((a, b) => b[1] - a[1]);
  return best ? { id: FILE_TYPES[best[0]]!, name: best[0] } : { id: 0, name: 'F32' };
}

export function ggufFileName(modelDir: string, entries: PlanEntry[], o?: ResolvedOptions): string {
  return `${modelName(modelDir)}-${o?.ggufType === 'mobile' ? 'mobile' : fileTypeOf(entries).name}.gguf`;
}

const outName = (e: PlanEntry) => e.treatment.outputName ?? e.tensor.name;

function baseMetadata(entries: PlanEntry[], modelDir: string, architecture: string): GgufKV[] {
  const S = GgufValueType.STRING, U32 = GgufValueType.U32;
  const kvs: GgufKV[] = [
    { key: 'general.architecture', type: S, value: architecture },
    { key: 'general.name', type: S, value: modelName(modelDir) },
    { key: 'general.file_type', type: U32, value: fileTypeOf(entries).id },
    { key: 'general.alignment', type: U32, value: GGUF_DEFAULT_ALIGNMENT },
  ];
  if (entries.some((e) => e.treatment.kind === 'quantize')) kvs.push({ key: 'general.quantization_version', type: U32, value: 2 });
  kvs.push({ key: 'quantkit.version', type: S, value: VERSION });
  return kvs;
}

function rawMetadata(entries: PlanEntry[], modelDir: string, config: ModelConfig | null, aliases: Map<string, string>): GgufKV[] {
  const S = GgufValueType.STRING;
  const kvs = baseMetadata(entries, modelDir, typeof config?.model_type === 'string' ? config.model_type : 'unknown');
  kvs.push({ key: 'quantkit.runnable', type: GgufValueType.BOOL, value: false });
  if (config) kvs.push({ key: 'quantkit.hf_config', type: S, value: JSON.stringify(config) });
  if (aliases.size) kvs.push({ key: 'quantkit.tensor_aliases', type: S, value: JSON.stringify(Object.fromEntries(aliases)) });
  return kvs;
}

async function runnableMetadata(entries: PlanEntry[], ckpt: Checkpoint, arch: GgufArchitecture): Promise<GgufKV[]> {
  const kvs = baseMetadata(entries, ckpt.dir, arch.arch);
  kvs.push(...arch.metadata());
  const embed = entries.find((e) => outName(e) === 'token_embd.weight');
  // A model known by shapes alone (config.json, remote headers) has no tokenizer here: its size estimate
  // leaves the tokenizer metadata out.
  if (!ckpt.shapesOnly) kvs.push(...(await ggufTokenizerMetadata(ckpt.dir, ckpt.config, embed?.tensor.shape[0] ?? arch.dims.vocab)));
  kvs.push({ key: 'quantkit.runnable', type: GgufValueType.BOOL, value: true });
  kvs.push({ key: SOURCES_KEY, type: GgufValueType.STRING, value: JSON.stringify(Object.fromEntries(entries.map((e) => [outName(e), e.tensor.name]))) });
  return kvs;
}

function encode(entries: PlanEntry[], kvs: GgufKV[]) {
  return encodeGgufHeader(kvs, entries.map((e) => ({ name: outName(e), ne: ggufDims(e.tensor, e.treatment), type: ggmlType(e.treatment), bytes: e.outputBytes })));
}

/** The GGUF type a runnable file gives a 2-D weight, before shape fallbacks. */
function runnableType(gguf: string, o: ResolvedOptions, requested: 4 | 8, explicit: boolean, layers: number): GgmlType {
  if (explicit) return requested === 8 ? 'Q8_0' : o.mode === 'asym' ? 'Q4_1' : 'Q4_0';
  const ft = o.ggufType;
  if (ft === 'mobile') {
    const layer = Number(/^blk\.(\d+)\./.exec(gguf)?.[1] ?? -1);
    if (gguf === 'output.weight' || gguf === 'token_embd.weight') return 'Q8_0';
    if (/\.(attn_v|ffn_down)\.weight$/.test(gguf) && layer >= 0 && moreBits(layer, layers)) return 'Q8_0';
    return 'Q4_0';
  }
  if (ft) return ft;
  return requested === 8 ? 'Q8_0' : o.mode === 'asym' ? 'Q4_1' : 'Q4_0';
}

function makeFormat(runnable: boolean): OutputFormat {
  const archCache = new WeakMap<Checkpoint, GgufArchitecture>();
  const archOf = (ckpt: Checkpoint) => {
    let a = archCache.get(ckpt);
    if (!a) archCache.set(ckpt, (a = ggufArchitecture(ckpt.config, ckpt.dir)));
    return a;
  };
  return {
    name: 'gguf',

    checkOptions(o: ResolvedOptions) {
      const usage = (m: string) => new QuantkitError('ERR_USAGE', m);
      if (o.groupSize !== 32) throw usage(`GGUF's Q8_0/Q4_0/Q4_1 blocks hold 32 weights: --group-size must be 32 with --format gguf (got ${o.groupSize})`);
      if (o.mode === 'asym' && (o.bits === 8 || o.bitsFor.some((r) => r.bits === 8)) && !o.ggufType)
        throw usage('GGUF has no asymmetric 8-bit weight type: use --sym for 8 bits (Q8_0)');
      if (usesIq4nl(o.quantMethod) && o.mode === 'asym') throw usage(`IQ4_NL is a symmetric code: --method ${o.quantMethod} needs --sym`);
      if (o.quantMethod === 'hqq' && o.ggufType !== undefined && o.ggufType !== 'Q4_1') throw usage(`--method hqq fits Q4_1 blocks (not ${o.ggufType})`);
      if (o.scaleDtype !== undefined && o.scaleDtype !== 'F16') throw usage('GGUF block types store F16 scales: --scale-dtype must be F16 with --format gguf');
      if (o.maxShardSize !== undefined) throw usage('--max-shard-size applies to --format safetensors only');
    },

    decide(t, generic: GenericDecision, o: ResolvedOptions, ckpt: Checkpoint): Treatment {
      if (t.shape.length > 4) throw new QuantkitError('ERR_PLAN', `${t.shape.length} dimensions: GGUF allows at most 4`, { file: t.file, tensor: t.name });
      let placement: { outputName?: string; transform?: Treatment['transform'] } = {};
      if (runnable) {
        const arch = archOf(ckpt);
        // A tied pair stored only under lm_head.weight is the token embedding llama.cpp needs.
        const hfName = t.name === 'lm_head.weight' && ckpt.aliases.get('model.embed_tokens.weight') === 'lm_head.weight' ? 'model.embed_tokens.weight' : t.name;
        const mapped = arch.map(hfName);
        if (!mapped) throw new QuantkitError('ERR_PLAN', `llama.cpp's ${arch.arch} architecture has no tensor for it (use --format gguf-raw to keep every tensor)`, { file: t.file, tensor: t.name });
        placement = { outputName: mapped.name, ...(mapped.transform ? { transform: mapped.transform } : {}) };
      }
      const keep = (reason: string, dtype: Dtype): Treatment => {
        const outDtype = t.shape.length <= 1 && (dtype === 'F16' || dtype === 'BF16' || placement.transform?.kind === 'add-one') ? 'F32' : dtype;
        if (!STORABLE[outDtype]) throw new QuantkitError('ERR_PLAN', `${t.dtype} cannot be stored in GGUF`, { file: t.file, tensor: t.name });
        const why = outDtype !== dtype && t.shape.length <= 1 ? `${reason}; stored as F32 as llama.cpp expects for 1-D tensors` : outDtype !== dtype ? `${reason}; converted to ${outDtype}` : reason;
        return { kind: 'keep', outDtype, reason: why, ...placement };
      };
      if ('keep' in generic) return keep(generic.keep, t.dtype);
      const view = matrixView(t.shape);
      const type = runnable ? runnableType(placement.outputName!, o, generic.bits, generic.explicit, archOf(ckpt).dims.layers) : generic.bits === 8 ? 'Q8_0' : o.mode === 'asym' ? 'Q4_1' : 'Q4_0';
      if (type === 'F32' || type === 'F16' || type === 'BF16') return keep(`--gguf-type ${type}`, type);
      if (view.cols % 32 !== 0) {
        if (!runnable) return keep(`row length ${view.cols} is not a multiple of 32 (ggml block size): kept as ${t.dtype}`, t.dtype);
        // llama.cpp's kernels take F16 rows of any length on every backend.
        return keep(`row length ${view.cols} is not a multiple of 32 (ggml block size): ${type} cannot hold it, F16 instead`, 'F16');
      }
      // --method iq4nl: IQ4_NL takes the place of Q4_0 (same size, a non-linear code).
      const scheme = type === 'Q8_0' ? 'q8_0' : type === 'Q4_1' ? 'q4_1' : usesIq4nl(o.quantMethod) ? 'iq4_nl' : 'q4_0';
      const method = kernelMethod(o.quantMethod, scheme);
      const spec: KernelSpec = { scheme, bits: scheme === 'q8_0' ? 8 : 4, group: 32, scaleDtype: 'F16' as FloatDtype, ...(method !== 'rtn' ? { method } : {}) };
      const how = method === 'gptq' || method === 'hqq' ? ` ${method}` : method === 'search' && scheme !== 'iq4_nl' ? ' search' : '';
      return { kind: 'quantize', spec, view, label: `${SCHEME_TYPE[scheme]}${how}`, ...placement };
    },

    tensorBytes(t, tr) {
      if (tr.kind === 'keep') return shapeElements(t.shape)! * GGML_TYPES[STORABLE[tr.outDtype]!][2];
      const [, blck, size] = GGML_TYPES[ggmlType(tr)];
      return (tr.view.rows * tr.view.cols / blck) * size;
    },

    async layout(entries, ckpt, o): Promise<PlannedFile[]> {
      if (runnable) {
        const names = new Map<string, string>();
        for (const e of entries) {
          const prev = names.get(outName(e));
          if (prev) throw new QuantkitError('ERR_PLAN', `both ${prev} and ${e.tensor.name} map to ${outName(e)}`, { file: ckpt.dir, tensor: e.tensor.name });
          names.set(outName(e), e.tensor.name);
        }
        if (!names.has('token_embd.weight')) throw new QuantkitError('ERR_PLAN', 'no token embedding (model.embed_tokens.weight) to run the model with', { file: ckpt.dir });
      }
      const kvs = runnable ? await runnableMetadata(entries, ckpt, archOf(ckpt)) : rawMetadata(entries, ckpt.dir, ckpt.config, ckpt.aliases);
      const { fileBytes } = encode(entries, kvs);
      return [{ name: ggufFileName(ckpt.dir, entries, o), bytes: fileBytes, kind: 'weights', tensors: entries.map((e) => e.tensor.name), gguf: kvs }];
    },

    async write(plan, dir, ctx) {
      const f = plan.files[0]!;
      const { header, infos, fileBytes } = encode(plan.entries, f.gguf!);
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

    readBack: readBackGguf,
  };
}

export const ggufFormat = makeFormat(true);
export const ggufRawFormat = makeFormat(false);

async function readBackGguf(dir: string): Promise<ReadBack> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.gguf'));
  if (names.length !== 1) throw new QuantkitError('ERR_VERIFY', `expected one .gguf file, found ${names.length}`, { file: dir });
  const file = join(dir, names[0]!);
  const reader = await GgufReader.open(file);
  const sourcesKv = reader.file.kvs.get(SOURCES_KEY);
  let sources: Record<string, string> = {};
  if (sourcesKv) {
    try {
      const v = parseStrictJson(String(sourcesKv.value));
      if (!isJsonObject(v as never)) throw new Error('not an object');
      sources = v as Record<string, string>;
    } catch (e) {
      await reader.close();
      throw new QuantkitError('ERR_GGUF', `${SOURCES_KEY} is not a JSON object of names (${(e as Error).message})`, { file });
    }
  }
  const tensors: ReadBackTensor[] = reader.file.tensors.map((t) => {
    const scheme = TYPE_SCHEME[t.type];
    const shape = [...t.ne].reverse();
    const source = typeof sources[t.name] === 'string' ? { source: sources[t.name] } : {};
    if (!scheme) {
      const dtype = (Object.entries(STORABLE).find(([, g]) => g === t.type)?.[0] ?? 'F32') as Dtype;
      return { name: t.name, ...source, kind: 'keep', dtype, shape, bytes: t.bytes, readRange: (o, target) => reader.readRange(t, o, target) };
    }
    const cols = t.ne[0]!;
    const rows = t.ne.slice(1).reduce((a, b) => a * b, 1);
    const spec: KernelSpec = { scheme, bits: scheme === 'q8_0' ? 8 : 4, group: 32, scaleDtype: 'F16', ...(scheme === 'iq4_nl' ? { method: 'search' as const } : {}) };
    return { name: t.name, ...source, kind: 'quantize', spec, view: { rows, cols }, label: t.type, bytes: t.bytes, load: async (alloc) => ({ data: await reader.read(t, alloc?.(t.bytes)) }) };
  });
  return { format: 'gguf', tensors, runnable: !!sourcesKv, close: () => reader.close() };
}
