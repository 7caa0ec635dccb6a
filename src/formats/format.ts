/**
 * The container interface: what every output format (GGUF, compressed-tensors safetensors, and the next
 * ones) provides — its decisions, exact sizes, a writer and a reader for verify — and the plan data it
 * works on (treatments, entries, files). The planner (plan.ts) drives it; the weight encodings a format
 * stores come from the format registry (./types/). A new container is one module implementing
 * OutputFormat, registered in plan.ts's formatFor.
 */
import type { Checkpoint, CheckpointTensor, ModelConfig } from '../checkpoint.js';
import type { KernelSpec, QuantizedParts } from '../native.js';
import type { FormatName, ResolvedOptions } from '../options.js';
import { type Dtype, shapeElements } from '../safetensors/dtypes.js';
import type { TensorTransform } from './gguf-arch.js';
import type { GgufKV } from './gguf-container.js';

/** A matrix view of a tensor: quantization groups run along `cols`, the contiguous last dimension(s). */
export interface MatrixView {
  rows: number;
  cols: number;
}

/** Rows and columns of the matrix a tensor is quantized as (conv weights: one row per output channel). */
export function matrixView(shape: readonly number[]): MatrixView {
  const cols = shape.length === 4 ? shape[1]! * shape[2]! * shape[3]! : shape[shape.length - 1]!;
  return { rows: shapeElements(shape)! / cols, cols };
}

/** Where a tensor goes: its name in the output (when the format renames it) and a change made to its values first. */
interface Placement {
  outputName?: string;
  transform?: TensorTransform;
}

/** What happens to one tensor: quantized with a kernel spec (labelled by the registry), or kept and why. */
export type Treatment =
  | ({ kind: 'quantize'; spec: KernelSpec; view: MatrixView; label: string; note?: string } & Placement)
  | ({ kind: 'keep'; outDtype: Dtype; reason: string } & Placement);

export interface PlanEntry {
  tensor: CheckpointTensor;
  treatment: Treatment;
  /** Bytes this tensor occupies in the output (data of all its output tensors, without headers). */
  outputBytes: number;
}

export interface Plan {
  model: string;
  config: ModelConfig | null;
  /** Tied weights of the checkpoint: absent name -> stored name. */
  aliases: Map<string, string>;
  format: FormatName;
  options: ResolvedOptions;
  entries: PlanEntry[];
  files: PlannedFile[];
  sourceBytes: number;
  outputBytes: number;
  quantizedParams: number;
  quantizedOutputBytes: number;
  /** Average stored bits per quantized weight, scales and zero points included. */
  bitsPerQuantizedWeight: number;
}

/** What the generic rules say about a tensor before the format has its word. */
export interface Request {
  bits: 4 | 8;
  /** True when a --bits-for rule named this tensor explicitly. */
  explicit: boolean;
}

export type GenericDecision = { keep: string } | Request;

export interface PlannedFile {
  /** File name inside the output directory. */
  name: string;
  /** Exact size in bytes, predicted before anything is written. */
  bytes: number;
  kind: 'weights' | 'index' | 'config' | 'copy';
  /** Source tensor names stored in this file (weights files). */
  tensors?: string[];
  /** Contents of small generated files (index, config), computed at plan time. */
  content?: string;
  /** safetensors `__metadata__` of a weights file. */
  metadata?: Record<string, string>;
  /** Absolute path of the file copied from the checkpoint. */
  source?: string;
  /** GGUF metadata of a GGUF file, computed at plan time (its size is part of the file's). */
  gguf?: GgufKV[];
}

/** A tensor's output, ready to write: quantized parts, or the kept bytes already in their output dtype. */
export type Materialized = { kind: 'quantize'; parts: QuantizedParts } | { kind: 'keep'; bytes: Uint8Array };

export interface WriteContext {
  materialize(entry: PlanEntry): Promise<Materialized>;
  signal?: AbortSignal;
}

/**
 * A tensor found in an output file, matched to its source tensor by name. `transform`: what the writer
 * did to the source before quantizing it (ONNX: rows zero-padded to whole blocks), which verify repeats.
 */
export type ReadBackTensor =
  | { name: string; source?: string; kind: 'quantize'; spec: KernelSpec; view: MatrixView; label: string; bytes: number; load(alloc?: Alloc): Promise<QuantizedParts>; transform?: TensorTransform }
  | { name: string; source?: string; kind: 'keep'; dtype: Dtype; shape: number[]; bytes: number; readRange(offset: number, target: Uint8Array): Promise<Uint8Array> };

/** Where a reader puts the bytes it loads (a BufferPool's acquire, say); fresh buffers by default. */
export type Alloc = (bytes: number) => Uint8Array;

export interface ReadBack {
  format: 'safetensors' | 'gguf' | 'onnx';
  /** A runnable GGUF: tensors renamed (`source` gives the checkpoint's name) and some transformed. */
  runnable?: boolean;
  tensors: ReadBackTensor[];
  close(): Promise<void>;
}

/**
 * An output container. The planner calls checkOptions once, decide and tensorBytes for every tensor
 * (sizes from the format registry's encodings), then layout for the files; `quantize` calls write with
 * the finished plan, `verify` detect and readBack. Every size is known before anything is written.
 */
export interface OutputFormat {
  name: 'safetensors' | 'gguf' | 'onnx';
  /** Refuses option combinations this container cannot store (ERR_USAGE). */
  checkOptions(o: ResolvedOptions): void;
  /** One tensor's treatment: the encoding (as a kernel spec) or why it is kept, and where it goes. */
  decide(t: CheckpointTensor, generic: GenericDecision, o: ResolvedOptions, ckpt: Checkpoint): Treatment;
  /** Data bytes of one tensor's outputs (no headers). */
  tensorBytes(t: CheckpointTensor, treatment: Treatment): number;
  /** The files (names, exact sizes, small contents and metadata) for the planned entries. */
  layout(entries: PlanEntry[], ckpt: Checkpoint, o: ResolvedOptions): Promise<PlannedFile[]>;
  /** Writes the planned files, asking `ctx` for each tensor's quantized or kept bytes in plan order. */
  write(plan: Plan, dir: string, ctx: WriteContext): Promise<void>;
  /** Opens an output directory written in this format. */
  readBack(dir: string): Promise<ReadBack>;
  /** Does this directory hold output of this format? */
  detect(dir: string): Promise<boolean>;
}
