/**
 * A Hugging Face checkpoint on disk: config.json, one safetensors file or shards listed in
 * model.safetensors.index.json, and tied weights (aliases in `__metadata__`, or `tie_word_embeddings`).
 * Every shard path from the index is checked to stay inside the model directory. A diffusers component
 * (unet/, vae/, ...) is the same with diffusion_pytorch_model.safetensors; a diffusers pipeline folder
 * (model_index.json) holds several of them (src/pipeline.ts).
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { type ErrorCode, QuantkitError, ioError } from './errors.js';
import type { Dtype } from './safetensors/dtypes.js';
import type { TensorInfo } from './safetensors/header.js';
import { SafetensorsReader } from './safetensors/reader.js';
import { isJsonObject, parseStrictJson } from './safetensors/strict-json.js';

export const INDEX_FILE = 'model.safetensors.index.json';
/** A diffusers pipeline folder: this file lists its components (src/pipeline.ts quantizes it whole). */
export const PIPELINE_INDEX = 'model_index.json';

/**
 * What weights files are called: `model.safetensors` (transformers) or `diffusion_pytorch_model.safetensors`
 * (diffusers components), else `<stem>-00001-of-0000N.safetensors` shards with `<stem>.safetensors.index.json`.
 * Outputs keep the input's stem.
 */
export const WEIGHTS_STEMS = ['model', 'diffusion_pytorch_model'] as const;
export type WeightsStem = (typeof WEIGHTS_STEMS)[number];
export const indexFileName = (stem: WeightsStem): string => `${stem}.safetensors.index.json`;

/** The stem of a lone .safetensors file: diffusers' name kept, anything else written as model.safetensors. */
function stemOfFile(file: string): WeightsStem {
  return basename(file).startsWith('diffusion_pytorch_model') ? 'diffusion_pytorch_model' : 'model';
}

/** The weights a directory holds: the index of the first stem that has one, else its single file. */
export async function findWeights(dir: string): Promise<{ stem: WeightsStem; index: boolean } | null> {
  for (const stem of WEIGHTS_STEMS) {
    if (await pathExists(join(dir, indexFileName(stem)))) return { stem, index: true };
    if (await pathExists(join(dir, `${stem}.safetensors`))) return { stem, index: false };
  }
  return null;
}

/** A diffusers pipeline folder: a directory holding model_index.json. */
export async function isDiffusersPipeline(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => null);
  return !!st?.isDirectory() && (await pathExists(join(path, PIPELINE_INDEX)));
}

/** Why a directory without weights cannot be opened, in the terms of what it does hold. */
async function noWeights(dir: string): Promise<QuantkitError> {
  if (await pathExists(join(dir, PIPELINE_INDEX)))
    return new QuantkitError('ERR_CHECKPOINT', `a diffusers pipeline folder (${PIPELINE_INDEX}): quantize and plan take it whole, verify takes it with --against the source pipeline; the other commands take one component folder (e.g. ${join(dir, 'unet')})`, { file: dir });
  const names = await readdir(dir).catch(() => [] as string[]);
  const variants = names.filter((n) => /^(model|diffusion_pytorch_model)\..+\.safetensors$/.test(n));
  if (variants.length)
    return new QuantkitError('ERR_CHECKPOINT', `only variant weights here (${variants.join(', ')}): quantkit reads ${WEIGHTS_STEMS.map((s) => `${s}.safetensors`).join(' or ')}; rename the variant to quantize to that name`, { file: dir });
  return new QuantkitError('ERR_CHECKPOINT', `no model.safetensors or ${INDEX_FILE} in this directory (nor a diffusers diffusion_pytorch_model.safetensors)${names.includes('config.json') ? '; with config.json alone, quantkit estimate works' : ''}`, { file: dir });
}

export interface CheckpointTensor {
  name: string;
  dtype: Dtype;
  shape: number[];
  bytes: number;
  /** Absolute path of the shard that holds it. */
  file: string;
  info: TensorInfo;
}

export type ModelConfig = Record<string, unknown>;

export class Checkpoint {
  private constructor(
    /** The model directory (absolute). */
    readonly dir: string,
    readonly config: ModelConfig | null,
    readonly tensors: CheckpointTensor[],
    /** Tensor names absent from the files and the stored tensor they stand for (tied weights). */
    readonly aliases: Map<string, string>,
    private readers: Map<string, SafetensorsReader>,
    /** The path the user gave: the model directory, or a single .safetensors file. */
    readonly input: string,
    /**
     * True for a checkpoint known only by its tensor shapes (a config.json, or a hub repository's
     * safetensors headers): it can be planned, never read.
     */
    readonly shapesOnly = false,
    /** The weights files' name (model or diffusion_pytorch_model); outputs keep it. */
    readonly weightsStem: WeightsStem = 'model',
  ) {
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  private byName: Map<string, CheckpointTensor>;

  /** Opens a model directory, or a single .safetensors file. */
  static async open(input: string): Promise<Checkpoint> {
    const path = resolve(input);
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      throw ioError('ERR_CHECKPOINT', path, e, 'cannot open model');
    }
    const dir = st.isDirectory() ? path : dirname(path);
    // A lone file is the whole input: a config.json beside it may belong to something else.
    const config = st.isDirectory() ? await readConfig(dir) : null;
    let files: string[];
    let weightMap: Map<string, string> | null = null;
    let stem: WeightsStem;
    if (!st.isDirectory()) {
      files = [path];
      stem = stemOfFile(path);
    } else {
      const found = await findWeights(dir);
      if (!found) throw await noWeights(dir);
      stem = found.stem;
      if (found.index) {
        weightMap = await readIndex(dir, indexFileName(stem));
        files = [...new Set(weightMap.values())];
      } else files = [join(dir, `${stem}.safetensors`)];
    }
    const indexFile = indexFileName(stem);

    const readers = new Map<string, SafetensorsReader>();
    try {
      for (const f of files) readers.set(f, await SafetensorsReader.open(f));
      const tensors: CheckpointTensor[] = [];
      const owner = new Map<string, string>();
      for (const [file, r] of readers) {
        for (const info of r.tensors) {
          const prev = owner.get(info.name);
          if (prev) throw new QuantkitError('ERR_CHECKPOINT', `tensor is stored twice (also in ${basename(prev)})`, { file, tensor: info.name });
          owner.set(info.name, file);
          if (weightMap && weightMap.get(info.name) !== file)
            throw new QuantkitError('ERR_CHECKPOINT', `tensor is not listed for this shard in ${indexFile}`, { file, tensor: info.name });
          tensors.push({ name: info.name, dtype: info.dtype, shape: info.shape, bytes: info.end - info.begin, file, info });
        }
      }
      if (weightMap) {
        for (const [name, file] of weightMap)
          if (owner.get(name) !== file)
            throw new QuantkitError('ERR_CHECKPOINT', `listed in ${indexFile} but missing from the shard`, { file, tensor: name });
      }
      return new Checkpoint(dir, config, tensors, findAliases(readers, owner, config), readers, path, false, stem);
    } catch (e) {
      await Promise.all([...readers.values()].map((r) => r.close()));
      throw e;
    }
  }

  /**
   * A checkpoint described by tensor shapes alone, for predictions: the planner sees what it would see
   * on disk (same names, dtypes, shapes, aliases), but there are no bytes to read and no files to copy.
   */
  static fromShapes(name: string, config: ModelConfig | null, tensors: { name: string; dtype: Dtype; shape: number[]; bytes: number; file?: string }[], aliases = new Map<string, string>()): Checkpoint {
    let offset = 0;
    const list: CheckpointTensor[] = tensors.map((t) => {
      const info: TensorInfo = { name: t.name, dtype: t.dtype, shape: t.shape, begin: offset, end: offset + t.bytes };
      offset += t.bytes;
      return { name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.bytes, file: t.file ?? name, info };
    });
    return new Checkpoint(name, config, list, aliases, new Map(), name, true);
  }

  /** True when the checkpoint was opened from a single .safetensors file rather than a directory. */
  get isSingleFile(): boolean {
    return this.input !== this.dir;
  }

  get files(): string[] {
    return [...this.readers.keys()];
  }

  get totalBytes(): number {
    return this.tensors.reduce((s, t) => s + t.bytes, 0);
  }

  tensor(name: string): CheckpointTensor | undefined {
    return this.byName.get(name);
  }

  async read(t: CheckpointTensor, target?: Uint8Array): Promise<Uint8Array> {
    return this.reader(t).read(t.info, target);
  }

  /** The open file and byte offset of a tensor's data (valid until close()). */
  location(t: CheckpointTensor): { fd: number; offset: number } {
    return this.reader(t).location(t.info);
  }

  async readRange(t: CheckpointTensor, offset: number, target: Uint8Array): Promise<Uint8Array> {
    return this.reader(t).readRange(t.info, offset, target);
  }

  private reader(t: CheckpointTensor): SafetensorsReader {
    const r = this.readers.get(t.file);
    if (!r) throw new QuantkitError('ERR_CHECKPOINT', 'this model is known by its tensor shapes only; its weights cannot be read', { file: t.file, tensor: t.name });
    return r;
  }

  async close(): Promise<void> {
    await Promise.all([...this.readers.values()].map((r) => r.close()));
  }
}

/**
 * False only when the path is absent; a permission or I/O error is reported (with `code`, naming the
 * path), not mistaken for absence.
 */
export async function pathExists(p: string, code: ErrorCode = 'ERR_CHECKPOINT'): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') return false;
    throw ioError(code, p, e);
  }
}

async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw ioError('ERR_CHECKPOINT', file, e);
  }
  try {
    return parseStrictJson(text);
  } catch (e) {
    throw new QuantkitError('ERR_CHECKPOINT', `not valid JSON: ${(e as Error).message}`, { file });
  }
}

/** A JSON file that must hold an object (config.json, tokenizer files); errors name the file. */
export async function readJsonObject(file: string, what: string): Promise<Record<string, unknown>> {
  const v = await readJsonFile(file);
  if (!isJsonObject(v as never)) throw new QuantkitError('ERR_CHECKPOINT', `${what} is not a JSON object`, { file });
  return v as Record<string, unknown>;
}

async function readConfig(dir: string): Promise<ModelConfig | null> {
  const file = join(dir, 'config.json');
  if (!(await pathExists(file))) return null;
  return (await readJsonObject(file, 'config.json')) as ModelConfig;
}

/**
 * A model's name from its directory: the repository name for a Hugging Face cache snapshot
 * (`.../models--org--name/snapshots/<commit>` → `name`), else the directory's own name.
 */
export function modelName(dir: string): string {
  const m = /models--[^/\\]+?--([^/\\]+)[/\\]snapshots[/\\][^/\\]+[/\\]?$/.exec(dir);
  return m ? m[1]! : basename(dir);
}

/** Is `child` inside `parent` (both absolute, resolved)? */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) && rel.split(sep)[0] !== '..';
}

/** Reads the shard index; every shard path must resolve inside the model directory. */
async function readIndex(dir: string, name: string): Promise<Map<string, string>> {
  const file = join(dir, name);
  const v = (await readJsonFile(file)) as Record<string, unknown>;
  const wm = isJsonObject(v as never) ? v.weight_map : undefined;
  if (!isJsonObject(wm as never)) throw new QuantkitError('ERR_CHECKPOINT', 'has no weight_map object', { file });
  const out = new Map<string, string>();
  const checked = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '')
      throw new QuantkitError('ERR_CHECKPOINT', `weight_map entry is not a file name`, { file, tensor: name });
    let target = checked.get(shard);
    if (target === undefined) {
      const candidate = resolve(dir, shard);
      if (isAbsolute(shard) || !isInside(dir, candidate))
        throw new QuantkitError('ERR_CHECKPOINT', `shard path '${shard}' leaves the model directory`, { file, tensor: name });
      // The path itself must stay inside; a symbolic link there may point elsewhere (the Hugging Face
      // cache links snapshot files to its blobs/ folder), which is the cache's business, not the index's.
      try {
        await stat(candidate);
      } catch (e) {
        throw new QuantkitError('ERR_CHECKPOINT', `shard '${shard}' is missing or unreadable (${(e as NodeJS.ErrnoException).code ?? e})`, { file, tensor: name });
      }
      target = candidate;
      checked.set(shard, target);
    }
    out.set(name, target);
  }
  if (out.size === 0) throw new QuantkitError('ERR_CHECKPOINT', 'weight_map is empty', { file });
  return out;
}

/**
 * Tied weights: safetensors writers drop one of two tensors that share storage and may record
 * `absent name -> stored name` in __metadata__ (tinystories-656k stores only lm_head.weight).
 * Without that, `tie_word_embeddings` means lm_head.weight is the embedding table.
 */
function findAliases(readers: Map<string, SafetensorsReader>, owner: Map<string, string>, config: ModelConfig | null): Map<string, string> {
  return tiedAliases([...readers.values()].map((r) => r.header.metadata ?? {}), new Set(owner.keys()), config);
}

/** Tied weights from the files' `__metadata__` and config.json (for local and remote headers alike). */
export function tiedAliases(metadatas: Record<string, string>[], stored: Set<string>, config: ModelConfig | null): Map<string, string> {
  const aliases = new Map<string, string>();
  for (const m of metadatas) {
    for (const [k, v] of Object.entries(m)) {
      if (!stored.has(k) && stored.has(v)) aliases.set(k, v);
    }
  }
  const tied = config?.tie_word_embeddings;
  if ((tied === true || tied === undefined) && !stored.has('lm_head.weight') && !aliases.has('lm_head.weight')) {
    const embed = ['model.embed_tokens.weight', 'transformer.wte.weight', 'model.decoder.embed_tokens.weight'].find((n) => stored.has(n));
    if (embed && config) aliases.set('lm_head.weight', embed);
  }
  return aliases;
}
