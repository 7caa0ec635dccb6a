/**
 * An exported folder run by ONNX Runtime (onnxruntime-node, an optional peer dependency loaded only
 * here): logits of a whole sequence in one pass (for perplexity, through eval/perplexity.ts's
 * protocol), and greedy generation through the KV cache the way transformers.js drives the graph (the
 * prompt with an empty past, then one token at a time with the previous present as past).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { QuantkitError } from '../../errors.js';
import { ONNX_DIR } from './onnx-format.js';

// The slice of onnxruntime-node's API used here, declared locally so that quantkit's published types do
// not name the optional peer dependency.
interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}
interface OrtValueMetadata {
  readonly name: string;
  readonly type?: string;
  readonly shape?: readonly (number | string)[];
}
interface OrtSession {
  readonly inputMetadata: readonly OrtValueMetadata[];
  readonly outputMetadata: readonly OrtValueMetadata[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface OrtModule {
  InferenceSession: { create(path: string, options: { intraOpNumThreads?: number; logSeverityLevel?: number }): Promise<OrtSession> };
  Tensor: new (type: string, data: BigInt64Array | Float32Array | Uint16Array, dims: readonly number[]) => OrtTensor;
}
let ort: Promise<OrtModule> | undefined;

/** onnxruntime-node, or ERR_USAGE saying how to install it. */
export function onnxRuntime(): Promise<OrtModule> {
  ort ??= import('onnxruntime-node').then(
    (m) => ((m as unknown as { default?: OrtModule }).default ?? (m as unknown as OrtModule)),
    (e: Error) => {
      ort = undefined;
      throw new QuantkitError('ERR_USAGE', `running ONNX models needs onnxruntime-node (npm install onnxruntime-node@1.30.0): ${e.message}`);
    },
  );
  return ort;
}

export class OrtDecoder {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: OrtSession,
    private readonly vocab: number,
  ) {}

  /** Opens the folder's onnx/*.onnx (or the given .onnx file) on the CPU. */
  static async open(path: string, o: { threads?: number } = {}): Promise<OrtDecoder> {
    const rt = await onnxRuntime();
    let file = path;
    if (!path.endsWith('.onnx')) {
      const names = (await readdir(join(path, ONNX_DIR))).filter((n) => n.endsWith('.onnx'));
      if (names.length !== 1) throw new QuantkitError('ERR_USAGE', `expected one .onnx file in ${join(path, ONNX_DIR)}, found ${names.length}`, { file: path });
      file = join(path, ONNX_DIR, names[0]!);
    }
    const session = await rt.InferenceSession.create(file, { intraOpNumThreads: o.threads ?? 1, logSeverityLevel: 3 });
    const logits = session.outputMetadata.find((m) => m.name === 'logits');
    const vocab = Number(logits?.shape?.[2]);
    if (!Number.isSafeInteger(vocab)) throw new QuantkitError('ERR_USAGE', 'the model has no logits output with a fixed vocabulary size', { file });
    return new OrtDecoder(rt, session, vocab);
  }

  private ids(tokens: readonly number[]): OrtTensor {
    return new this.ort.Tensor('int64', BigInt64Array.from(tokens, (t) => BigInt(t)), [1, tokens.length]);
  }

  /** The feeds of one step: `tokens` after `past` cached positions (an empty cache when `past` is null). */
  private feeds(tokens: readonly number[], past: Record<string, OrtTensor> | null, pastLength: number): Record<string, OrtTensor> {
    const feeds: Record<string, OrtTensor> = {
      input_ids: this.ids(tokens),
      attention_mask: new this.ort.Tensor('int64', new BigInt64Array(pastLength + tokens.length).fill(1n), [1, pastLength + tokens.length]),
    };
    for (const m of this.session.inputMetadata) {
      if (!m.name.startsWith('past_key_values.')) continue;
      if (past) feeds[m.name] = past[m.name.replace('past_key_values', 'present')]!;
      else feeds[m.name] = new this.ort.Tensor(m.type ?? 'float32', m.type === 'float16' ? new Uint16Array(0) : new Float32Array(0), [1, Number(m.shape?.[1]), 0, Number(m.shape?.[3])]);
    }
    return feeds;
  }

  /** Logits [tokens.length, vocab] of one sequence, computed in one pass. */
  async logits(tokens: readonly number[]): Promise<Float32Array> {
    const out = await this.session.run(this.feeds(tokens, null, 0));
    return out.logits!.data as Float32Array;
  }

  /** The prompt followed by `count` greedily chosen tokens, decoded through the KV cache. */
  async greedy(prompt: readonly number[], count: number): Promise<number[]> {
    const seq = [...prompt];
    let past: Record<string, OrtTensor> | null = null;
    let step: readonly number[] = prompt;
    for (let n = 0; n < count; n++) {
      const out = await this.session.run(this.feeds(step, past, seq.length - step.length));
      const logits = out.logits!.data as Float32Array;
      const last = (step.length - 1) * this.vocab;
      let best = 0;
      for (let i = 1; i < this.vocab; i++) if (logits[last + i]! > logits[last + best]!) best = i;
      seq.push(best);
      past = out;
      step = [best];
    }
    return seq;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
