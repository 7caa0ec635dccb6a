/**
 * quantkit's typed library API. The CLI is a thin layer over these functions.
 *
 *   import { quantize } from 'quantkit';
 *   const { output, report } = await quantize('models/stories260k', { bits: 4, format: 'gguf' });
 */
export { quantize, localModel, defaultOutputName, REPORT_FILE, type QuantizeRunOptions, type QuantizeResult, type QuantizationReport, type Progress } from './quantize.js';
export { planQuantization, resolveOptions, matrixView, type Plan, type PlanEntry, type QuantizeOptions, type ResolvedOptions, type Treatment, type FormatName, type Mode, type GroupSize } from './plan.js';
export { verifyOutput, metricsFromSums, type VerifyResult, type TensorReport, type ErrorMetrics, type VerifyOptions } from './verify.js';
export { estimate, estimateModel, openLocalModel, fromConfig, architectureShapes, SUPPORTED_ARCHITECTURES, GPUS, findGpu, WEIGHT_DTYPES, LLAMA_CPP_FILE_TYPES, type Estimate, type EstimateOptions, type EstimateModel, type Scenario, type PeakKind, type ModelDims, type Gpu, type WeightDtype, type RemoteOptions } from './estimate/index.js';
export { pull, isOffline, DEFAULT_INCLUDE, type PullOptions, type PullResult, type PulledFile, type DownloadProgress } from './hub/pull.js';
export { hubCacheDir, repoFolderName } from './hub/cache.js';
export { parseRepoId, type HubOptions } from './hub/client.js';
export { Checkpoint, type CheckpointTensor, type ModelConfig } from './checkpoint.js';
export { SafetensorsReader } from './safetensors/reader.js';
export { SafetensorsWriter, encodeHeader, predictSafetensorsSize, type TensorEntry } from './safetensors/writer.js';
export { parseHeader, type SafetensorsHeader, type TensorInfo } from './safetensors/header.js';
export { DTYPE_SIZES, type Dtype, type FloatDtype } from './safetensors/dtypes.js';
export { GgufReader, encodeGgufHeader, GGML_TYPES, type GgmlType, type GgufFile, type GgufKV } from './formats/gguf-container.js';
export { addon, type KernelSpec, type KernelScheme, type QuantizedParts, type ErrorSums, type AddonInfo } from './native.js';
export { QuantkitError, EXIT_CODES, type ErrorCode } from './errors.js';
export { VERSION } from './version.js';
