/**
 * What an estimate is about: a model known by its tensors (exact, from safetensors headers) or by its
 * config.json alone (architecture formulas), plus the hyper-parameters the memory formulas need.
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Checkpoint, type ModelConfig, findWeights, modelName, pathExists, readJsonObject } from '../checkpoint.js';
import { QuantkitError, ioError } from '../errors.js';
import { type Dtype, DTYPE_SIZES, shapeElements } from '../safetensors/dtypes.js';
import { type ModelDims, SUPPORTED_ARCHITECTURES, architectureShapes } from './architectures.js';

export type ParamsSource = 'safetensors headers' | 'config formulas' | 'hub safetensors headers';

export interface EstimateModel {
  name: string;
  config: ModelConfig | null;
  /** Null when config.json is missing or names an architecture without formulas (sizes still work). */
  dims: ModelDims | null;
  paramsSource: ParamsSource;
  /** Exact parameter count (tied weights counted once). */
  params: number;
  /** The checkpoint as the planner sees it (shapes only for configs and remote headers). */
  checkpoint: Checkpoint;
  /** Parameters of the largest single tensor (ZeRO-3 gathers, dequantization scratch). */
  largestTensorParams: number;
}

const TORCH_DTYPES: Record<string, Dtype> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', float: 'F32', half: 'F16' };

/** The dtype a config says its weights are stored in (F32 when it does not say: transformers' default). */
export function configDtype(config: ModelConfig | null): Dtype {
  const d = config?.torch_dtype ?? config?.dtype;
  return (typeof d === 'string' && TORCH_DTYPES[d]) || 'F32';
}

/** Builds the estimate's view of a checkpoint already open (local directory or hub headers). */
export function fromCheckpoint(ckpt: Checkpoint, source: ParamsSource, name = modelName(ckpt.dir)): EstimateModel {
  const dims = ckpt.config && SUPPORTED_ARCHITECTURES.includes(String(ckpt.config.model_type)) ? architectureShapes(ckpt.config, `${ckpt.dir}/config.json`).dims : null;
  let params = 0;
  let largest = 0;
  for (const t of ckpt.tensors) {
    const n = shapeElements(t.shape) ?? 0;
    params += n;
    if (t.shape.length >= 2) largest = Math.max(largest, n);
  }
  return { name, config: ckpt.config, dims, paramsSource: source, params, checkpoint: ckpt, largestTensorParams: largest };
}

/** A model from its config.json alone: every tensor the architecture stores, in the config's dtype. */
export function fromConfig(config: ModelConfig, file: string, name?: string): EstimateModel {
  const { dims, tensors } = architectureShapes(config, file);
  const dtype = configDtype(config);
  const aliases = new Map<string, string>();
  const ckpt = Checkpoint.fromShapes(
    file,
    config,
    tensors.map((t) => ({ name: t.name, dtype, shape: t.shape, bytes: shapeElements(t.shape)! * DTYPE_SIZES[dtype] })),
    aliases,
  );
  const m = fromCheckpoint(ckpt, 'config formulas', name ?? (typeof config._name_or_path === 'string' && config._name_or_path ? config._name_or_path : basename(dirname(resolve(file)))));
  return { ...m, dims };
}

/**
 * A local target: a model directory (headers), a config.json path (formulas), or a directory holding a
 * config.json and no weights yet, what people download first to see whether a model fits (formulas).
 */
export async function openLocalModel(target: string): Promise<EstimateModel> {
  const path = resolve(target);
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw ioError('ERR_CHECKPOINT', path, e, 'cannot open model');
  }
  if (st.isFile() && path.endsWith('.json')) return fromConfig((await readJsonObject(path, 'config')) as ModelConfig, path);
  const config = join(path, 'config.json');
  if (st.isDirectory() && !(await findWeights(path)) && (await pathExists(config))) {
    const c = (await readJsonObject(config, 'config.json')) as ModelConfig;
    try {
      return fromConfig(c, config, modelName(path));
    } catch (e) {
      if (e instanceof QuantkitError) throw new QuantkitError(e.code, `${e.message} (no safetensors weights in this folder: the estimate would come from config.json alone)`);
      throw e;
    }
  }
  return fromCheckpoint(await Checkpoint.open(path), 'safetensors headers');
}
