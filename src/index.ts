/**
 * quantkit's typed library API. The CLI is a thin layer over these functions.
 *
 *   import { quantize } from 'quantkit';
 *   const { output, report } = await quantize('models/stories260k', { bits: 4, format: 'gguf' });
 *   const { report: sweep } = await report('models/stories260k', { bits: [4], methods: ['rtn', 'iq4nl'] });
 *   await quantize('models/stories260k', { bits: 4, format: 'onnx', onnxDtype: 'q4' });  // transformers.js folder
 */
export { quantize, localModel, defaultOutputName, REPORT_FILE, type QuantizeRunOptions, type QuantizeResult, type QuantizationReport, type Progress } from './quantize.js';
export { planQuantization, resolveOptions, checkKernels, loadImportanceMatrix, imatrixWeights, matrixView, QUANT_METHODS, type Plan, type PlanEntry, type QuantizeOptions, type CalibrationOptions, type ImportanceMatrix, type ResolvedOptions, type Treatment, type FormatName, type Mode, type GroupSize, type QuantMethod } from './plan.js';
export { report, DEFAULT_AXES, paretoFront, type ReportRunOptions, type ReportResult, type ReportOptions, type SweepResult, type VariantResult, type SkippedVariant, type SweepAxes, type WeightError } from './report/index.js';
export { LlamaModel, llamaConfig, EVAL_ARCHITECTURES, type TensorValues } from './eval/llama.js';
export { Tokenizer } from './eval/tokenizer.js';
export { Reference, readDocuments, tokenSequences, type Perplexity, type Divergence } from './eval/perplexity.js';
export { quantizeInMemory, type QuantizedModel, type TensorError } from './eval/quantized-values.js';
export { estimateColumnImportance } from './quant/importance.js';
export { calibrate, CALIBRATION_DEFAULTS, type Calibration } from './quant/calibration.js';
export { calibrationBytes } from './eval/llama.js';
export { verifyOutput, metricsFromSums, type VerifyResult, type TensorReport, type ErrorMetrics, type VerifyOptions } from './verify.js';
export { estimate, estimateModel, openLocalModel, fromConfig, architectureShapes, SUPPORTED_ARCHITECTURES, GPUS, findGpu, WEIGHT_DTYPES, LLAMA_CPP_FILE_TYPES, type Estimate, type EstimateOptions, type EstimateModel, type Scenario, type PeakKind, type ModelDims, type Gpu, type WeightDtype, type RemoteOptions } from './estimate/index.js';
export { pull, isOffline, DEFAULT_INCLUDE, type PullOptions, type PullResult, type PulledFile, type DownloadProgress } from './hub/pull.js';
export { hubCacheDir, repoFolderName } from './hub/cache.js';
export { parseRepoId, type HubOptions } from './hub/client.js';
export { Checkpoint, isDiffusersPipeline, type CheckpointTensor, type ModelConfig } from './checkpoint.js';
export { quantizePipeline, planPipeline, verifyPipeline, readPipeline, type PipelineLayout, type PipelinePlan, type PipelineReport, type PipelineResult, type PipelineVerifyResult } from './pipeline.js';
export { SafetensorsReader } from './safetensors/reader.js';
export { SafetensorsWriter, encodeHeader, predictSafetensorsSize, type TensorEntry } from './safetensors/writer.js';
export { parseHeader, type SafetensorsHeader, type TensorInfo } from './safetensors/header.js';
export { DTYPE_SIZES, type Dtype, type FloatDtype } from './safetensors/dtypes.js';
export { GgufReader, encodeGgufHeader, type GgufFile, type GgufKV } from './formats/gguf-container.js';
export { WEIGHT_ENCODINGS, GGML_TYPE_NAMES, PACKED_INT_ENCODINGS, ggmlType, ggmlTypeById, encodingOfScheme, ggmlTensorBytes, ggmlBitsPerWeight, type WeightEncoding, type GgmlType, type GgmlTypeName, type PackedIntEncoding } from './formats/types/index.js';
export { GGUF_FILE_TYPES, LLAMA_CPP_FTYPES, llamaCppTypes, type GgufFileType, type LlamaCppFileType } from './formats/gguf-mixes.js';
export { readImatrixFile, writeImatrixFile, imatrixValues, type ImatrixFile, type ImatrixEntry } from './formats/imatrix-file.js';
export { computeImatrix, type ImatrixOptions } from './imatrix.js';
export { ONNX_DTYPES, onnxModelFile, type OnnxDtype } from './formats/onnx/dtypes.js';
export { OrtDecoder, onnxRuntime } from './formats/onnx/ort-session.js';
export { writtenValues } from './formats/onnx/written-values.js';
export { addon, type KernelSpec, type KernelScheme, type KernelMethod, type QuantizedParts, type ErrorSums, type AddonInfo, type LlamaForwardConfig, type LlamaForwardWeights, type LlamaInputStats } from './native.js';
export { QuantkitError, UsageError, SafetensorsError, ModelError, WeightValueError, OutputError, AccuracyError, VerifyError, HubError, NativeError, AbortedError, EXIT_CODES, type ErrorCode } from './errors.js';
export { VERSION } from './version.js';
