/** What every output format provides: decisions, exact sizes, a writer and a reader for verify. */
import type { Checkpoint, CheckpointTensor } from '../checkpoint.js';
import type { KernelSpec, QuantizedParts } from '../native.js';
import type { GenericDecision, MatrixView, Plan, PlanEntry, ResolvedOptions, Treatment } from '../plan.js';
import type { Dtype } from '../safetensors/dtypes.js';
import type { GgufKV } from './gguf-container.js';
import type { TensorTransform } from './gguf-arch.js';

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

export interface OutputFormat {
  name: 'safetensors' | 'gguf' | 'onnx';
  checkOptions(o: ResolvedOptions): void;
  decide(t: CheckpointTensor, generic: GenericDecision, o: ResolvedOptions, ckpt: Checkpoint): Treatment;
  /** Data bytes of one tensor's outputs (no headers). */
  tensorBytes(t: CheckpointTensor, treatment: Treatment): number;
  layout(entries: PlanEntry[], ckpt: Checkpoint, o: ResolvedOptions): Promise<PlannedFile[]>;
  write(plan: Plan, dir: string, ctx: WriteContext): Promise<void>;
  /** Opens an output directory written in this format. */
  readBack(dir: string): Promise<ReadBack>;
  /** Does this directory hold output of this format? */
  detect(dir: string): Promise<boolean>;
}
