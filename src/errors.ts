/** Every failure quantkit reports on purpose is a QuantkitError with a stable code and an exit code. */
export type ErrorCode =
  | 'ERR_USAGE'
  | 'ERR_SAFETENSORS_HEADER'
  | 'ERR_SAFETENSORS_DATA'
  | 'ERR_CHECKPOINT'
  | 'ERR_GGUF'
  | 'ERR_PLAN'
  | 'ERR_NONFINITE'
  | 'ERR_SCALE_OVERFLOW'
  | 'ERR_OUTPUT_EXISTS'
  | 'ERR_OUTPUT_INSIDE_INPUT'
  | 'ERR_OUTPUT_LOCKED'
  | 'ERR_ACCURACY'
  | 'ERR_VERIFY'
  | 'ERR_EVAL'
  | 'ERR_NATIVE'
  | 'ERR_IO'
  | 'ERR_HUB_NOT_FOUND'
  | 'ERR_HUB_AUTH'
  | 'ERR_HUB_NETWORK'
  | 'ERR_HUB_INTEGRITY'
  | 'ERR_HUB_LISTING'
  | 'ERR_HUB_OFFLINE'
  | 'ERR_ABORTED';

/** Process exit codes, documented in the README. */
export const EXIT_CODES: Record<ErrorCode, number> = {
  ERR_USAGE: 2,
  ERR_SAFETENSORS_HEADER: 3,
  ERR_SAFETENSORS_DATA: 3,
  ERR_CHECKPOINT: 3,
  ERR_GGUF: 3,
  ERR_PLAN: 3,
  ERR_NONFINITE: 3,
  ERR_SCALE_OVERFLOW: 3,
  ERR_OUTPUT_EXISTS: 4,
  ERR_OUTPUT_INSIDE_INPUT: 4,
  ERR_OUTPUT_LOCKED: 4,
  ERR_IO: 4,
  ERR_ACCURACY: 5,
  ERR_VERIFY: 6,
  ERR_EVAL: 3,
  ERR_HUB_NOT_FOUND: 7,
  ERR_HUB_AUTH: 7,
  ERR_HUB_NETWORK: 7,
  ERR_HUB_INTEGRITY: 7,
  ERR_HUB_LISTING: 7,
  ERR_HUB_OFFLINE: 7,
  ERR_NATIVE: 1,
  ERR_ABORTED: 130,
};

export interface ErrorContext {
  file?: string;
  tensor?: string;
  cause?: unknown;
}

/**
 * The base of every error quantkit throws on purpose. `new QuantkitError(code, ...)` returns an instance
 * of the subclass for its code's category (below), so callers can `catch (e) { if (e instanceof
 * HubError) ... }` or switch on `e.code`; the message names the file and tensor concerned.
 */
export class QuantkitError extends Error {
  readonly code: ErrorCode;
  readonly file?: string;
  readonly tensor?: string;

  constructor(code: ErrorCode, detail: string, context: ErrorContext = {}) {
    const where = [context.file, context.tensor !== undefined ? `tensor '${context.tensor}'` : undefined]
      .filter((s) => s !== undefined)
      .join(': ');
    super(where ? `${where}: ${detail}` : detail, context.cause !== undefined ? { cause: context.cause } : undefined);
    // One constructor for all call sites; the category decides the class.
    const category = CATEGORY[code];
    if (new.target === QuantkitError && category) Object.setPrototypeOf(this, category.prototype);
    this.name = (Object.getPrototypeOf(this) as { constructor: { name: string } }).constructor.name;
    this.code = code;
    if (context.file !== undefined) this.file = context.file;
    if (context.tensor !== undefined) this.tensor = context.tensor;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

/** A bad option or combination of options (exit 2). */
export class UsageError extends QuantkitError {
  declare readonly code: 'ERR_USAGE';
}
/** A malformed safetensors file: header or data (exit 3). */
export class SafetensorsError extends QuantkitError {
  declare readonly code: 'ERR_SAFETENSORS_HEADER' | 'ERR_SAFETENSORS_DATA';
}
/** A checkpoint, GGUF file or model that cannot be planned, read or evaluated (exit 3). */
export class ModelError extends QuantkitError {
  declare readonly code: 'ERR_CHECKPOINT' | 'ERR_GGUF' | 'ERR_PLAN' | 'ERR_EVAL';
}
/** Weights that cannot be quantized: NaN/Inf, or a scale beyond the scale dtype (exit 3). */
export class WeightValueError extends QuantkitError {
  declare readonly code: 'ERR_NONFINITE' | 'ERR_SCALE_OVERFLOW';
}
/** The output was refused or could not be written (exit 4). */
export class OutputError extends QuantkitError {
  declare readonly code: 'ERR_OUTPUT_EXISTS' | 'ERR_OUTPUT_INSIDE_INPUT' | 'ERR_OUTPUT_LOCKED' | 'ERR_IO';
}
/** A tensor's error is above --max-rel-rmse (exit 5). */
export class AccuracyError extends QuantkitError {
  declare readonly code: 'ERR_ACCURACY';
}
/** The written files differ from the plan or do not read back (exit 6). */
export class VerifyError extends QuantkitError {
  declare readonly code: 'ERR_VERIFY';
}
/** Hugging Face Hub: not found, no access, network, integrity, listing, offline (exit 7). */
export class HubError extends QuantkitError {
  declare readonly code: 'ERR_HUB_NOT_FOUND' | 'ERR_HUB_AUTH' | 'ERR_HUB_NETWORK' | 'ERR_HUB_INTEGRITY' | 'ERR_HUB_LISTING' | 'ERR_HUB_OFFLINE';
}
/** The native addon is missing or failed (exit 1). */
export class NativeError extends QuantkitError {
  declare readonly code: 'ERR_NATIVE';
}
/** Cancelled by an AbortSignal or SIGINT/SIGTERM (exit 130). */
export class AbortedError extends QuantkitError {
  declare readonly code: 'ERR_ABORTED';
}

const CATEGORY: Record<ErrorCode, typeof QuantkitError> = {
  ERR_USAGE: UsageError,
  ERR_SAFETENSORS_HEADER: SafetensorsError,
  ERR_SAFETENSORS_DATA: SafetensorsError,
  ERR_CHECKPOINT: ModelError,
  ERR_GGUF: ModelError,
  ERR_PLAN: ModelError,
  ERR_EVAL: ModelError,
  ERR_NONFINITE: WeightValueError,
  ERR_SCALE_OVERFLOW: WeightValueError,
  ERR_OUTPUT_EXISTS: OutputError,
  ERR_OUTPUT_INSIDE_INPUT: OutputError,
  ERR_OUTPUT_LOCKED: OutputError,
  ERR_IO: OutputError,
  ERR_ACCURACY: AccuracyError,
  ERR_VERIFY: VerifyError,
  ERR_HUB_NOT_FOUND: HubError,
  ERR_HUB_AUTH: HubError,
  ERR_HUB_NETWORK: HubError,
  ERR_HUB_INTEGRITY: HubError,
  ERR_HUB_LISTING: HubError,
  ERR_HUB_OFFLINE: HubError,
  ERR_NATIVE: NativeError,
  ERR_ABORTED: AbortedError,
};

/** Wraps an fs error (ENOENT, EACCES, EISDIR, ELOOP, ...) into a message that names the file. */
export function ioError(code: ErrorCode, file: string, err: unknown, what = 'cannot read'): QuantkitError {
  const e = err as NodeJS.ErrnoException;
  const reason = e && typeof e === 'object' && 'code' in e ? `${e.code}: ${e.message.replace(/^[A-Z]+: /, '')}` : String(err);
  return new QuantkitError(code, `${what}: ${reason}`, { file, cause: err });
}
