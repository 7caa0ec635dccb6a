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

export class QuantkitError extends Error {
  readonly code: ErrorCode;
  readonly file?: string;
  readonly tensor?: string;

  constructor(code: ErrorCode, detail: string, context: ErrorContext = {}) {
    const where = [context.file, context.tensor !== undefined ? `tensor '${context.tensor}'` : undefined]
      .filter((s) => s !== undefined)
      .join(': ');
    super(where ? `${where}: ${detail}` : detail, context.cause !== undefined ? { cause: context.cause } : undefined);
    this.name = 'QuantkitError';
    this.code = code;
    if (context.file !== undefined) this.file = context.file;
    if (context.tensor !== undefined) this.tensor = context.tensor;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

/** Wraps an fs error (ENOENT, EACCES, EISDIR, ELOOP, ...) into a message that names the file. */
export function ioError(code: ErrorCode, file: string, err: unknown, what = 'cannot read'): QuantkitError {
  const e = err as NodeJS.ErrnoException;
  const reason = e && typeof e === 'object' && 'code' in e ? `${e.code}: ${e.message.replace(/^[A-Z]+: /, '')}` : String(err);
  return new QuantkitError(code, `${what}: ${reason}`, { file, cause: err });
}
