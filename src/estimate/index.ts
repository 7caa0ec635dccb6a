/** The estimate API: one entry point for local directories, config.json files and hub repositories. */
import { pathExists } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import { type HubOptions, parseRepoId } from '../hub/client.js';
import { isOffline, pull } from '../hub/pull.js';
import { openRemoteModel } from '../hub/remote-model.js';
import { type Estimate, type EstimateOptions, estimateLocal, estimateModel } from './estimate.js';

export { type Estimate, type EstimateOptions, type Scenario, type PeakKind, estimateModel, estimateLocal, DEFAULT_CUDA_CONTEXT } from './estimate.js';
export { type EstimateModel, openLocalModel, fromConfig, fromCheckpoint } from './model.js';
export { architectureShapes, SUPPORTED_ARCHITECTURES, type ModelDims } from './architectures.js';
export { DEVICES, findDevice, fitOn, type Device, type DeviceFit } from './devices.js';
/** The device table's earlier names (when it held only GPUs). */
export { DEVICES as GPUS, findDevice as findGpu, type Device as Gpu } from './devices.js';
export { FRAMEWORKS, type Framework } from './frameworks.js';
export { parseParallel, type ParallelLayout } from './parallel.js';
export { weightBytes, tensorRole, WEIGHT_DTYPES, type WeightDtype, type WeightFormat } from './weights.js';
export { LLAMA_CPP_FILE_TYPES, type LlamaCppFileType } from '../formats/gguf-mixes.js';

export interface RemoteOptions extends HubOptions {
  revision?: string;
  cacheDir?: string;
  offline?: boolean;
}

/**
 * Estimates for TARGET: a model directory or config.json on disk, else a hub id `org/name[@revision]`
 * whose safetensors headers and config.json are fetched (never the weights).
 */
export async function estimate(target: string, options: EstimateOptions = {}, remote: RemoteOptions = {}): Promise<Estimate> {
  if (await pathExists(target)) return estimateLocal(target, options);
  const id = parseRepoId(target);
  if (!id) throw new QuantkitError('ERR_CHECKPOINT', 'no such file or directory, and not a hub id (org/name[@revision])', { file: target });
  const revision = remote.revision ?? id.revision;
  // Offline, a snapshot already in the cache is a local model directory.
  if (remote.offline ?? isOffline()) return estimateLocal((await pull(id.repo, { ...remote, revision, offline: true })).snapshot, options);
  const model = await openRemoteModel(id.repo, { ...remote, revision });
  return estimateModel(model, options);
}
