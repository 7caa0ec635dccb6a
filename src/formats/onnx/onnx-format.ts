/**
 * `--format onnx`: a folder transformers.js and ONNX Runtime load as they load a model from the hub —
 * config.json (with transformers.js_config naming the dtype and its external data file), the tokenizer
 * and generation files copied, and onnx/model_<dtype>.onnx + .onnx_data: a decoder graph quantkit builds
 * from config.json (decoder-graph.ts) over the checkpoint's weights.
 *
 * Projections become MatMulNBits weights and the token embedding a GatherBlockQuantized one (q4, q8,
 * q4f16; --group-size is the block size, a power of two >= 16; --sym / --asym; every --method that writes
 * integer codes); norms, biases, --keep'd tensors and the float variants are stored in the activations'
 * float type.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AtomicFile, writeFileAtomic } from '../../atomic-file.js';
import type { Checkpoint } from '../../checkpoint.js';
import { QuantkitError, ioError } from '../../errors.js';
import type { KernelSpec } from '../../native.js';
import { type ResolvedOptions, kernelMethod, usesIq4nl } from '../../options.js';
import { dtypeSize, isKernelFloat, shapeElements } from '../../safetensors/dtypes.js';
import type { GenericDecision, Materialized, OutputFormat, PlanEntry, PlannedFile, Treatment } from '../format.js';
import { filesToCopy, writeSmallFile } from '../packed-safetensors.js';
import { type DecoderArch, decoderArch, graphKey, isProjection } from './decoder-arch.js';
import { activationDtype, dtypeBits, resolveOnnxDtype } from './dtypes.js';
import { gatherable } from './gather-block-quantized.js';
import { encodeParts, encodedBytes, encodingLabel, kernelScheme, matMulNBitsTensors, paddedRow, validBlock } from './matmul-nbits.js';
import { graphUses, onnxLayout } from './onnx-model.js';
import { readBackOnnx } from './read-back.js';

/** The folder inside the output that holds the .onnx files (transformers.js's `subfolder`). */
export const ONNX_DIR = 'onnx';

const archCache = new WeakMap<object, DecoderArch>();
function archOf(config: Checkpoint['config'], file: string): DecoderArch {
  const key = config ?? archCache;
  let a = archCache.get(key);
  if (!a) archCache.set(key, (a = decoderArch(config, file)));
  return a;
}

/** config.json with transformers.js's settings for the written file: its dtype and its external data. */
function transformersConfig(config: Checkpoint['config'], dtype: string, modelFile: string): string {
  const own = (config?.['transformers.js_config'] ?? {}) as Record<string, unknown>;
  const external = { ...((own.use_external_data_format as Record<string, unknown> | undefined) ?? {}), [modelFile]: 1 };
  return JSON.stringify({ ...(config ?? {}), 'transformers.js_config': { ...own, dtype, use_external_data_format: external } }, null, 2) + '\n';
}

/** A materialized tensor's initializers' bytes, in onnx-model.ts's entryTensors order. */
function initializerBytes(e: PlanEntry, m: Materialized): Uint8Array[] {
  const tr = e.treatment;
  if (m.kind === 'keep' || tr.kind === 'keep') return [m.kind === 'keep' ? m.bytes : m.parts.data];
  return encodeParts(m.parts, tr.view.rows, tr.view.cols, tr.spec);
}

export const onnxFormat: OutputFormat = {
  name: 'onnx',

  checkOptions(o: ResolvedOptions) {
    const usage = (m: string) => new QuantkitError('ERR_USAGE', m);
    if (o.groupSize === 'row' || !validBlock(o.groupSize)) throw usage(`MatMulNBits blocks are a power of two of at least 16 weights: --group-size must be 16, 32, 64, 128... with --format onnx (got ${o.groupSize})`);
    if (usesIq4nl(o.quantMethod) || o.quantMethod === 'hqq') throw usage(`--method ${o.quantMethod} writes llama.cpp's blocks: ONNX MatMulNBits stores integer codes (use rtn, search or gptq)`);
    const act = activationDtype(resolveOnnxDtype(o));
    if (o.scaleDtype !== undefined && o.scaleDtype !== act) throw usage(`MatMulNBits scales have the activations' type: --scale-dtype must be ${act} for this ONNX dtype (or left out)`);
    if (o.maxShardSize !== undefined) throw usage('--max-shard-size applies to --format safetensors only (ONNX weights go to one external data file)');
  },

  decide(t, generic: GenericDecision, o: ResolvedOptions, ckpt): Treatment {
    const arch = archOf(ckpt.config, ckpt.dir);
    const key = graphKey(t.name);
    if (!key) throw new QuantkitError('ERR_PLAN', `the ONNX ${arch.type} decoder graph has no place for this tensor`, { file: t.file, tensor: t.name });
    if (!isKernelFloat(t.dtype)) throw new QuantkitError('ERR_PLAN', `${t.dtype} weights: the ONNX graph computes in floating point`, { file: t.file, tensor: t.name });
    const dtype = resolveOnnxDtype(o);
    const act = activationDtype(dtype);
    const keep = (reason: string): Treatment => ({ kind: 'keep', outDtype: act, reason: t.dtype === act ? reason : `${reason}; stored as ${act}` });
    if ('keep' in generic) return keep(generic.keep);
    const bits = dtypeBits(dtype);
    if (bits === null) return keep(`--onnx-dtype ${dtype}`);
    const uses = graphUses(t.name, ckpt.aliases);
    if (!uses.some((k) => isProjection(k) || k === 'embed')) return keep('not a projection or embedding');
    const [rows, cols] = t.shape as [number, number];
    const block = o.groupSize as number;
    if (uses.includes('embed') && !gatherable(cols, block))
      return keep(`embedding rows of ${cols} are not whole blocks of ${block}: GatherBlockQuantized cannot store them`);
    const scheme = kernelScheme(o.mode);
    const method = kernelMethod(o.quantMethod, scheme);
    const spec: KernelSpec = { scheme, bits: generic.explicit ? generic.bits : bits, group: block, scaleDtype: act, ...(method !== 'rtn' ? { method } : {}) };
    const padded = paddedRow(cols, block);
    const op = uses.every((k) => k === 'embed') ? 'GatherBlockQuantized' : uses.includes('embed') ? 'MatMulNBits+GatherBlockQuantized' : 'MatMulNBits';
    return {
      kind: 'quantize',
      spec,
      view: { rows, cols: padded },
      label: encodingLabel(op, spec),
      ...(padded !== cols ? { transform: { kind: 'pad-rows', cols: padded }, note: `rows of ${cols} padded with zeros to ${padded} (MatMulNBits' last block)` } : {}),
    };
  },

  tensorBytes(t, tr) {
    if (tr.kind === 'keep') return shapeElements(t.shape)! * dtypeSize(tr.outDtype);
    return encodedBytes(matMulNBitsTensors(tr.view.rows, tr.view.cols, tr.spec));
  },

  async layout(entries, ckpt, o): Promise<PlannedFile[]> {
    const l = onnxLayout(entries, ckpt.config, ckpt.aliases, o, archOf(ckpt.config, ckpt.dir));
    const config = transformersConfig(ckpt.config, l.dtype, l.modelFile);
    const files: PlannedFile[] = [
      { name: `${ONNX_DIR}/${l.dataFile}`, bytes: l.dataBytes, kind: 'weights', tensors: entries.map((e) => e.tensor.name) },
      { name: `${ONNX_DIR}/${l.modelFile}`, bytes: l.model.length, kind: 'index' },
      { name: 'config.json', bytes: Buffer.byteLength(config), kind: 'config', content: config },
    ];
    if (!ckpt.isSingleFile && !ckpt.shapesOnly) files.push(...(await filesToCopy(ckpt.dir)));
    return files;
  },

  async write(plan, dir, ctx) {
    const l = onnxLayout(plan.entries, plan.config, plan.aliases, plan.options, archOf(plan.config, plan.model));
    await mkdir(join(dir, ONNX_DIR)).catch((e) => {
      throw ioError('ERR_IO', join(dir, ONNX_DIR), e, 'cannot create');
    });
    const out = await AtomicFile.create(join(dir, ONNX_DIR, l.dataFile), { direct: true });
    try {
      // An entry's parts are consecutive chunks: materialize it at its first one.
      let current: { entry: PlanEntry; bytes: Uint8Array[] } | undefined;
      for (const c of l.chunks) {
        ctx.signal?.throwIfAborted();
        if (c.offset > out.bytesWritten) await out.write(new Uint8Array(c.offset - out.bytesWritten));
        let bytes: Uint8Array;
        if ('generated' in c.source) bytes = c.source.generated();
        else {
          const { entry, part } = c.source;
          if (current?.entry !== entry) current = { entry, bytes: initializerBytes(entry, await ctx.materialize(entry)) };
          bytes = current.bytes[part]!;
        }
        if (bytes.length !== c.length) throw new QuantkitError('ERR_PLAN', `produced ${bytes.length} bytes, planned ${c.length}`, { tensor: 'generated' in c.source ? 'rotary cache' : c.source.entry.tensor.name });
        await out.write(bytes);
      }
    } catch (err) {
      await out.abort();
      throw err;
    }
    await out.commit(l.dataBytes);
    await writeFileAtomic(join(dir, ONNX_DIR, l.modelFile), l.model);
    for (const f of plan.files) if (f.kind === 'config' || f.kind === 'copy') await writeSmallFile(f, dir);
  },

  async detect(dir) {
    const names = await readdir(join(dir, ONNX_DIR)).catch(() => [] as string[]);
    if (!names.some((n) => n.endsWith('.onnx'))) return false;
    return readFile(join(dir, 'config.json'), 'utf8').then(() => true, () => false);
  },

  readBack: (dir) => readBackOnnx(join(dir, ONNX_DIR)),
};
