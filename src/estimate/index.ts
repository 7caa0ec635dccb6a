/** The estimate API: one entry point for local directories, config.json files and hub repositories. */
import { pathExists } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import { type Estimate, type EstimateOptions, estimateLocal } from './estimate.js';

export { type Estimate, type EstimateOptions, type Scenario, type PeakKind, estimateModel, estimateLocal, DEFAULT_CUDA_CONTEXT } from './estimate.js';
export { type EstimateModel, openLocalModel, fromConfig, fromCheckpoint } from './model.js';
export { architectureShapes, SUPPORTED_ARCHITECTURES, type ModelDims } from './architectures.js';
export { GPUS, findGpu, type Gpu } from './gpus.js';
export { parseParallel, type ParallelLayout } from './parallel.js';
export { weightBytes, tensorRole, WEIGHT_DTYPES, type WeightDtype, type WeightFormat } from './weights.js';
export { LLAMA_CPP_FILE_TYPES, type LlamaCppFileType } from './llamacpp-mix.js';

export interface RemoteOptions {
  revision?: string;
  token?: string;
}

/**
 * Estimates for TARGET: a model directory or config.json on disk, else a hub id `org/name[@revision]`
 * whose safetensors headers and config.json are fetched (never the weights).
 */
export async function estimate(target: string, options: EstimateOptions = {}, _remote: RemoteOptions = {}): Promise<Estimate> {
  if (await pathExists(target)) return estimateLocal(target, options);
  throw new QuantkitError('ERR_CHECKPOINT', 'no such file or directory', { file: target });
}
