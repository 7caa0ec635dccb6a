/**
 * GGUF output, in two forms:
 *  - `gguf` (runnable): llama.cpp's tensor names, hyper-parameters and tokenizer for the architectures of
 *    gguf-arch.ts, the tensors its converter changes changed the same way; llama.cpp loads and runs it.
 *  - `gguf-raw`: a plain container keeping the checkpoint's tensor names and config.json
 *    (`quantkit.runnable = false`), for any architecture.
 * Tensors are ggml types from the format registry (./types/); their kernels are bit-identical to ggml's
 * reference quantizers.
 *
 * Types per tensor: 1-D tensors F32 (as llama.cpp expects); matrices in the file type's mix (--gguf-type:
 * llama-quantize's per-tensor rules or quantkit's 'mobile' mix, both in gguf-mixes.ts; --pure: the file
 * type's own type everywhere), else Q4_0/Q4_1/Q8_0 from --bits/--asym everywhere. Rows that are not whole
 * blocks fall back as llama.cpp does (a smaller block, then F16; gguf-raw without --gguf-type keeps them
 * in their dtype), and the plan says so.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AtomicFile } from '../atomic-file.js';
import { type Checkpoint, type CheckpointTensor, type ModelConfig, modelName } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import { type ResolvedOptions, kernelMethod, usesIq4nl, writesIq4nl } from '../options.js';
import { type Dtype, shapeElements } from '../safetensors/dtypes.js';
import { isJsonObject, parseStrictJson } from '../safetensors/strict-json.js';
import { architectureShapes, SUPPORTED_ARCHITECTURES } from '../estimate/architectures.js';
import { VERSION } from '../version.js';
import { type GenericDecision, type OutputFormat, type PlanEntry, type PlannedFile, type ReadBack, type ReadBackTensor, type Treatment, matrixView } from './format.js';
import { type GgufArchitecture, ggufArchitecture } from './gguf-arch.js';
import { GgufReader, type GgufKV, GgufValueType, alignUp, encodeGgufHeader, GGUF_DEFAULT_ALIGNMENT } from './gguf-container.js';
import { LLAMA_CPP_FTYPES, type MixChoice, type MixModel, type MixTensor, fitChoice, ggufCategory, hfCategory, isLlamaCppFileType, layerOf, llamaCppQuantizes, llamaCppTypes, mobileType } from './gguf-mixes.js';
import { ggufTokenizerMetadata } from './gguf-tokenizer.js';
import { type GgmlType, type GgmlTypeName, ggmlLabel, ggmlSpec, ggmlType, ggmlTypeById, ggmlTypeOfDtype, ggmlTypeOfScheme } from './types/index.js';

/** Metadata key mapping a runnable file's tensor names to the checkpoint's (verify reads it). */
export const SOURCES_KEY = 'quantkit.sources';

/** The ggml type a treatment stores. */
function ggmlTypeOf(tr: Treatment): GgmlType {
  return tr.kind === 'quantize' ? ggmlTypeOfScheme(tr.spec.scheme) : ggmlTypeOfDtype(tr.outDtype)!;
}

/** GGUF dims, innermost first. Quantized conv weights are stored as 2-D [cols, rows] so blocks run along ne0. */
function ggufDims(t: CheckpointTensor, tr: Treatment): number[] {
  if (t.shape.length === 0) return [1];
  if (tr.kind === 'quantize' && t.shape.length === 4) return [tr.view.cols, tr.view.rows];
  return [...t.shape].reverse();
}

/**
 * general.file_type: the requested llama.cpp file type's LLAMA_FTYPE id (what llama-quantize writes);
 * otherwise (--bits, mobile) the type holding most matrix weights, as llama.cpp's converter guesses it.
 */
function fileTypeOf(entries: PlanEntry[], o: ResolvedOptions | undefined): { id: number; name: string } {
  if (isLlamaCppFileType(o?.ggufType)) return { id: LLAMA_CPP_FTYPES[o.ggufType].id, name: o.ggufType };
  const weight = new Map<GgmlTypeName, number>();
  const quantized = entries.some((e) => e.treatment.kind === 'quantize');
  for (const e of entries) {
    if (quantized !== (e.treatment.kind === 'quantize') || e.tensor.shape.length < 2) continue;
    const t = ggmlTypeOf(e.treatment).name as GgmlTypeName;
    weight.set(t, (weight.get(t) ?? 0) + shapeElements(e.tensor.shape)!);
  }
  const known = ([...weight.entries()].filter(([t]) => isLlamaCppFileType(t) && LLAMA_CPP_FTYPES[t].base === t) as [keyof typeof LLAMA_CPP_FTYPES, number][]).sort((a, b) => b[1] - a[1]);
  const best = known[0]?.[0];
  return { id: best ? LLAMA_CPP_FTYPES[best].id : 0, name: o?.ggufType ?? best ?? 'F32' };
}

export function ggufFileName(modelDir: string, entries: PlanEntry[], o?: ResolvedOptions): string {
  return `${modelName(modelDir)}-${fileTypeOf(entries, o).name}.gguf`;
}

const outName = (e: PlanEntry) => e.treatment.outputName ?? e.tensor.name;

/** A tied pair stored only under lm_head.weight is the token embedding llama.cpp needs. */
function ggufSourceName(ckpt: Checkpoint, name: string): string {
  return name === 'lm_head.weight' && ckpt.aliases.get('model.embed_tokens.weight') === 'lm_head.weight' ? 'model.embed_tokens.weight' : name;
}

function baseMetadata(entries: PlanEntry[], modelDir: string, architecture: string, o: ResolvedOptions): GgufKV[] {
  const S = GgufValueType.STRING, U32 = GgufValueType.U32;
  const kvs: GgufKV[] = [
    { key: 'general.architecture', type: S, value: architecture },
    { key: 'general.name', type: S, value: modelName(modelDir) },
    { key: 'general.file_type', type: U32, value: fileTypeOf(entries, o).id },
    { key: 'general.alignment', type: U32, value: GGUF_DEFAULT_ALIGNMENT },
  ];
  if (entries.some((e) => e.treatment.kind === 'quantize')) kvs.push({ key: 'general.quantization_version', type: U32, value: 2 });
  // What llama-quantize --imatrix records (its kv overrides: the path as given, the first dataset, counts).
  const im = o.importanceMatrix;
  if (im) {
    kvs.push({ key: 'quantize.imatrix.file', type: S, value: im.file.slice(0, 127) });
    if (im.datasets.length) kvs.push({ key: 'quantize.imatrix.dataset', type: S, value: im.datasets[0]!.slice(0, 127) });
    kvs.push({ key: 'quantize.imatrix.entries_count', type: U32, value: im.values.size });
    if (im.chunkCount > 0) kvs.push({ key: 'quantize.imatrix.chunks_count', type: U32, value: im.chunkCount });
  }
  kvs.push({ key: 'quantkit.version', type: S, value: VERSION });
  return kvs;
}

function rawMetadata(entries: PlanEntry[], modelDir: string, config: ModelConfig | null, aliases: Map<string, string>, o: ResolvedOptions): GgufKV[] {
  const S = GgufValueType.STRING;
  const kvs = baseMetadata(entries, modelDir, typeof config?.model_type === 'string' ? config.model_type : 'unknown', o);
  kvs.push({ key: 'quantkit.runnable', type: GgufValueType.BOOL, value: false });
  if (config) kvs.push({ key: 'quantkit.hf_config', type: S, value: JSON.stringify(config) });
  if (aliases.size) kvs.push({ key: 'quantkit.tensor_aliases', type: S, value: JSON.stringify(Object.fromEntries(aliases)) });
  return kvs;
}

async function runnableMetadata(entries: PlanEntry[], ckpt: Checkpoint, arch: GgufArchitecture, o: ResolvedOptions): Promise<GgufKV[]> {
  const kvs = baseMetadata(entries, ckpt.dir, arch.arch, o);
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
  return encodeGgufHeader(kvs, entries.map((e) => ({ name: outName(e), ne: ggufDims(e.tensor, e.treatment), type: ggmlTypeOf(e.treatment).name as GgmlTypeName, bytes: e.outputBytes })));
}

/** The model facts llama.cpp's rules read (llama.cpp's architecture names: mistral and mixtral run as llama). */
function mixModel(ckpt: Checkpoint, arch: GgufArchitecture | null): MixModel {
  if (arch) return { arch: arch.arch, layers: arch.dims.layers, heads: arch.dims.heads, kvHeads: arch.dims.kvHeads, experts: arch.dims.experts };
  const type = String(ckpt.config?.model_type ?? '');
  if (!ckpt.config || !SUPPORTED_ARCHITECTURES.includes(type))
    throw new QuantkitError('ERR_PLAN', `llama.cpp's file types need the model's layer and head counts: config.json's model_type ${type ? `'${type}' ` : ''}is none of ${SUPPORTED_ARCHITECTURES.join(', ')}`, { file: ckpt.dir });
  const d = architectureShapes(ckpt.config, ckpt.dir).dims;
  return { arch: type === 'mistral' || type === 'mixtral' ? 'llama' : type, layers: d.layers, heads: d.heads, kvHeads: d.kvHeads, experts: d.experts };
}

/**
 * The --imatrix weights of a tensor (`name`: its GGUF name): undefined without --imatrix, null when the
 * file has no entry for it (llama-quantize then quantizes it without one). An entry whose length is not
 * the row length is refused as llama-quantize refuses it (except for token_embd, which it ignores).
 */
function importanceFor(o: ResolvedOptions, name: string, cols: number, t: CheckpointTensor): Float32Array | null | undefined {
  const im = o.importanceMatrix;
  if (!im) return undefined;
  const v = im.values.get(name);
  if (!v) return null;
  if (v.length === cols) return v;
  if (name === 'token_embd.weight') return null;
  throw new QuantkitError('ERR_PLAN', `the importance matrix has ${v.length} columns for ${name}, the tensor has ${cols}: it was computed for another model`, { file: im.file, tensor: t.name });
}

function makeFormat(runnable: boolean): OutputFormat {
  const archCache = new WeakMap<Checkpoint, GgufArchitecture>();
  const archOf = (ckpt: Checkpoint) => {
    let a = archCache.get(ckpt);
    if (!a) archCache.set(ckpt, (a = ggufArchitecture(ckpt.config, ckpt.dir)));
    return a;
  };
  /** A checkpoint tensor as llama.cpp's rules see it: GGUF name and category (runnable) or the checkpoint's. */
  const mixTensor = (ckpt: Checkpoint, t: CheckpointTensor): MixTensor | null => {
    const cols = matrixView(t.shape).cols;
    if (!runnable) {
      const category = hfCategory(t.name, t.shape.length);
      return { name: t.name, category: category ?? 'other', cols, quantizable: category !== null };
    }
    const name = archOf(ckpt).map(ggufSourceName(ckpt, t.name))?.name;
    return name ? { name, category: ggufCategory(name), cols, quantizable: llamaCppQuantizes(name, t.shape.length) } : null;
  };
  // llama.cpp's choices depend on the whole file (tied embeddings, attn_v counts): computed once per
  // checkpoint and file type.
  const mixCache = new WeakMap<Checkpoint, Map<string, Map<string, MixChoice>>>();
  const mixOf = (ckpt: Checkpoint, o: ResolvedOptions): Map<string, MixChoice> => {
    const key = `${o.ggufType}${o.pure ? ' pure' : ''}${o.importanceMatrix ? ' imatrix' : ''}`;
    let byKey = mixCache.get(ckpt);
    if (!byKey) mixCache.set(ckpt, (byKey = new Map()));
    let mix = byKey.get(key);
    if (!mix) {
      const tensors = ckpt.tensors.map((t) => mixTensor(ckpt, t)).filter((t) => t !== null);
      byKey.set(key, (mix = llamaCppTypes(o.ggufType as keyof typeof LLAMA_CPP_FTYPES, tensors, mixModel(ckpt, runnable ? archOf(ckpt) : null), o.pure, o.importanceMatrix !== undefined)));
    }
    return mix;
  };

  /** The ggml type of a matrix, by --bits-for, --gguf-type or --bits, with its row's fallback. */
  const choose = (ckpt: Checkpoint, t: CheckpointTensor, name: string, generic: Exclude<GenericDecision, { keep: string }>, o: ResolvedOptions): MixChoice | { keep: string } => {
    const cols = matrixView(t.shape).cols;
    if (generic.explicit || o.ggufType === undefined) return fitChoice(generic.bits === 8 ? 'Q8_0' : o.mode === 'asym' ? 'Q4_1' : 'Q4_0', cols);
    if (o.ggufType === 'mobile') {
      const category = mixTensor(ckpt, t)?.category ?? 'other';
      return fitChoice(mobileType(category, layerOf(name), runnable ? archOf(ckpt).dims.layers : mixModel(ckpt, null).layers), cols);
    }
    return mixOf(ckpt, o).get(name) ?? { keep: 'llama.cpp keeps it unquantized (position embeddings, token types, MoE router)' };
  };

  return {
    name: 'gguf',

    checkOptions(o: ResolvedOptions) {
      const usage = (m: string) => new QuantkitError('ERR_USAGE', m);
      if (o.groupSize !== 32) throw usage(`--group-size must be 32 with --format gguf: GGUF's block types fix their own sizes (32 or 256 weights; got ${o.groupSize})`);
      if (o.mode === 'asym' && (o.bits === 8 || o.bitsFor.some((r) => r.bits === 8)) && !o.ggufType)
        throw usage('GGUF has no asymmetric 8-bit weight type: use --sym for 8 bits (Q8_0)');
      if (usesIq4nl(o.quantMethod) && o.mode === 'asym') throw usage(`IQ4_NL is a symmetric code: --method ${o.quantMethod} needs --sym`);
      if (usesIq4nl(o.quantMethod) && isLlamaCppFileType(o.ggufType) && o.ggufType !== 'IQ4_NL')
        throw usage(`--method ${o.quantMethod} writes IQ4_NL in place of Q4_0: use --gguf-type IQ4_NL (llama.cpp's IQ4_NL file) or --bits 4, not --gguf-type ${o.ggufType}`);
      if (o.quantMethod === 'hqq' && o.ggufType !== undefined && o.ggufType !== 'Q4_1') throw usage(`--method hqq fits Q4_1 blocks (not ${o.ggufType})`);
      if (o.scaleDtype !== undefined && o.scaleDtype !== 'F16') throw usage('GGUF block types store F16 scales: --scale-dtype must be F16 with --format gguf');
      if (o.maxShardSize !== undefined) throw usage('--max-shard-size applies to --format safetensors only');
    },

    decide(t, generic: GenericDecision, o: ResolvedOptions, ckpt: Checkpoint): Treatment {
      if (t.shape.length > 4) throw new QuantkitError('ERR_PLAN', `${t.shape.length} dimensions: GGUF allows at most 4`, { file: t.file, tensor: t.name });
      let placement: { outputName?: string; transform?: Treatment['transform'] } = {};
      if (runnable) {
        const arch = archOf(ckpt);
        const mapped = arch.map(ggufSourceName(ckpt, t.name));
        if (!mapped) throw new QuantkitError('ERR_PLAN', `llama.cpp's ${arch.arch} architecture has no tensor for it (use --format gguf-raw to keep every tensor)`, { file: t.file, tensor: t.name });
        placement = { outputName: mapped.name, ...(mapped.transform ? { transform: mapped.transform } : {}) };
      }
      const keep = (reason: string, dtype: Dtype): Treatment => {
        const outDtype = t.shape.length <= 1 && (dtype === 'F16' || dtype === 'BF16' || placement.transform?.kind === 'add-one') ? 'F32' : dtype;
        if (!ggmlTypeOfDtype(outDtype)) throw new QuantkitError('ERR_PLAN', `${t.dtype} cannot be stored in GGUF`, { file: t.file, tensor: t.name });
        const why = outDtype !== dtype && t.shape.length <= 1 ? `${reason}; stored as F32 as llama.cpp expects for 1-D tensors` : outDtype !== dtype ? `${reason}; converted to ${outDtype}` : reason;
        return { kind: 'keep', outDtype, reason: why, ...placement };
      };
      if ('keep' in generic) return keep(generic.keep, t.dtype);
      const view = matrixView(t.shape);
      const choice = choose(ckpt, t, placement.outputName ?? t.name, generic, o);
      if ('keep' in choice) return keep(choice.keep, t.dtype);
      let gt = ggmlType(choice.type);
      const wanted = choice.wanted && ggmlType(choice.wanted);
      const fallback = wanted?.fallback && choice.type !== wanted.fallback ? ggmlType(wanted.fallback) : undefined;
      const why = wanted && `row length ${view.cols} is not a multiple of ${wanted.blockWeights} (${wanted.name} blocks)${fallback ? ` nor of ${fallback.blockWeights} (its fallback ${fallback.name})` : ''}`;
      if (!gt.quantized) {
        if (!choice.wanted) return keep(`--gguf-type ${gt.name}`, gt.dtype!);
        // Without a llama.cpp file type, gguf-raw keeps such rows in their own dtype (lossless);
        // llama.cpp's kernels take F16 rows of any length on every backend.
        if (!runnable && !isLlamaCppFileType(o.ggufType)) return keep(`${why}: kept as ${t.dtype}`, t.dtype);
        return keep(`${why}: F16 instead, as llama.cpp falls back`, 'F16');
      }
      // --method iq4nl (and auto with calibration): IQ4_NL takes the place of Q4_0 (same size, a non-linear code).
      if (gt.name === 'Q4_0' && writesIq4nl(o) && !isLlamaCppFileType(o.ggufType)) gt = ggmlType('IQ4_NL');
      const imatrix = importanceFor(o, placement.outputName ?? t.name, view.cols, t);
      const wantedMethod = kernelMethod(o.quantMethod, gt.scheme!, imatrix === undefined ? undefined : imatrix !== null);
      const method = gt.methods.includes(wantedMethod) ? wantedMethod : 'rtn';
      const notes = [
        why && `${why}: ${gt.name}, as llama.cpp falls back`,
        method !== wantedMethod && (imatrix ? `${gt.name}'s quantizer takes no importance matrix` : `--method ${o.quantMethod} does not apply to ${gt.name}: llama.cpp's quantizer`),
        imatrix === null && 'no entry in the importance matrix: quantized without it, as llama-quantize does',
      ].filter(Boolean);
      return { kind: 'quantize', spec: ggmlSpec(gt, method), view, label: ggmlLabel(gt, method), ...(notes.length ? { note: notes.join('; ') } : {}), ...placement };
    },

    tensorBytes(t, tr) {
      const gt = ggmlTypeOf(tr);
      const { rows, cols } = tr.kind === 'quantize' ? tr.view : { rows: 1, cols: shapeElements(t.shape)! };
      return ((rows * cols) / gt.blockWeights) * gt.blockBytes;
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
      const kvs = runnable ? await runnableMetadata(entries, ckpt, archOf(ckpt), o) : rawMetadata(entries, ckpt.dir, ckpt.config, ckpt.aliases, o);
      const { fileBytes } = encode(entries, kvs);
      return [{ name: ggufFileName(ckpt.dir, entries, o), bytes: fileBytes, kind: 'weights', tensors: entries.map((e) => e.tensor.name), gguf: kvs }];
    },

    async write(plan, dir, ctx) {
      const f = plan.files[0]!;
      const { header, infos, fileBytes } = encode(plan.entries, f.gguf!);
      const out = await AtomicFile.create(join(dir, f.name), { direct: true });
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
    const gt = ggmlType(t.type);
    const shape = [...t.ne].reverse();
    const source = typeof sources[t.name] === 'string' ? { source: sources[t.name] } : {};
    if (!gt.quantized) return { name: t.name, ...source, kind: 'keep', dtype: gt.dtype!, shape, bytes: t.bytes, readRange: (o, target) => reader.readRange(t, o, target) };
    const cols = t.ne[0]!;
    const rows = t.ne.slice(1).reduce((a, b) => a * b, 1);
    // Dequantized through the type's own kernel method (the stored layout is the same for every method).
    const spec = ggmlSpec(gt, gt.methods[0]);
    return { name: t.name, ...source, kind: 'quantize', spec, view: { rows, cols }, label: t.type, bytes: t.bytes, load: async (alloc) => ({ data: await reader.read(t, alloc?.(t.bytes)) }) };
  });
  return { format: 'gguf', tensors, runnable: !!sourcesKv, close: () => reader.close() };
}
