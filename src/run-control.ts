/**
 * Progress and cancellation of a run. Native kernels count processed source bytes into a shared
 * control block and stop between chunks when its cancel word is set; these helpers connect that block
 * to an AbortSignal and to an onProgress callback fired at least every 100 ms.
 */
import { QuantkitError } from './errors.js';

export interface Progress {
  phase: 'calibrate' | 'quantize' | 'verify' | 'evaluate' | 'download';
  tensor: string;
  done: number;
  total: number;
  /** Bytes of source tensors processed so far, and in all. */
  bytesDone: number;
  bytesTotal: number;
}

/** Calls onProgress at least every 100 ms while `control` counts processed source bytes. */
export function progressTicker(onProgress: ((p: Progress) => void) | undefined, phase: Progress['phase'], control: BigInt64Array, bytesTotal: number, total: number) {
  let done = 0;
  let tensor = '';
  const emit = () => onProgress?.({ phase, tensor, done, total, bytesDone: Math.min(bytesTotal, Number(Atomics.load(control, 0))), bytesTotal });
  const timer = onProgress ? setInterval(emit, 100) : undefined;
  timer?.unref();
  return {
    tensorDone(name: string, n: number) {
      tensor = name;
      done = n;
      emit();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}

/** Sets the control block's cancel word when the signal aborts; returns the function that unlinks. */
export function linkCancel(signal: AbortSignal | undefined, control: BigInt64Array): () => void {
  if (!signal) return () => undefined;
  const onAbort = () => Atomics.store(control, 1, 1n);
  if (signal.aborted) onAbort();
  signal.addEventListener('abort', onAbort);
  return () => signal.removeEventListener('abort', onAbort);
}

/** Native work cancelled through the control block surfaces as the signal's abort reason. */
export function cancelledAsAbort(err: unknown, signal: AbortSignal | undefined): unknown {
  if ((err as { code?: string })?.code === 'ERR_CANCELLED' || signal?.aborted)
    return new QuantkitError('ERR_ABORTED', `interrupted${signal?.reason instanceof Error ? ` (${signal.reason.message})` : ''}; no output was written`);
  return err;
}

