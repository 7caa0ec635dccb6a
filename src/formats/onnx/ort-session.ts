/**
 * An exported folder run by ONNX Runtime (onnxruntime-node, an optional peer dependency loaded only
 * here): logits of a whole sequence in one pass (for perplexity, through eval/perplexity.ts's
 * protocol), and greedy generation through the KV cache the way transformers.js drives the graph (the
 * prompt with an empty past, then one token at a time with the previous present as past).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { QuantkitError } from '../../errors.js';
import { ONNX_DIR } from './onnx-format.js';

type OrtModule = typeof Ort;
let ort: Promise<OrtModule> | undefined;

/** onnxruntime-node, or ERR_USAGE saying how to install it. */
export function onnxRuntime(): Promise<OrtModule> {
  ort ??= import('onnxruntime-node').then(
    (m) => ((m as unknown as { default?: OrtModule }).default ?? m),
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
    readonly session: Ort.InferenceSession,
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
    const vocab = logits && 'shape' in logits ? Number(logits.shape[2]) : NaN;
    if (!Number.isSafeInteger(vocab)) throw new QuantkitError('ERR_USAGE', 'the model has no logits output with a fixed vocabulary size', { file });
    return new OrtDecoder(rt, session, vocab);
  }

  private ids(tokens: readonly number[]): Ort.Tensor {
    return new this.ort.Tensor('int64', BigInt64Array.from(tokens, (t) => BigInt(t)), [1, tokens.length]);
  }

  /** The feeds of one step: `tokens` after `past` cached positions (an empty cache when `past` is null). */
  private feeds(tokens: readonly number[], past: Record<string, Ort.Tensor> | null, pastLength: number): Record<string, Ort.Tensor> {
    const feeds: Record<string, Ort.Tensor> = {
      input_ids: this.ids(tokens),
      attention_mask: new this.ort.Tensor('int64', new BigInt64Array(pastLength + tokens.length).fill(1n), [1, pastLength + tokens.length]),
    };
    for (const m of this.session.inputMetadata) {
      if (!m.name.startsWith('past_key_values.')) continue;
      if (past) feeds[m.name] = past[m.name.replace('past_key_values', 'present')]!;
      else if ('shape' in m) feeds[m.name] = new this.ort.Tensor(m.type as 'float32', m.type === 'float16' ? new Uint16Array(0) : new Float32Array(0), [1, Number(m.shape[1]), 0, Number(m.shape[3])]);
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
    let past: Record<string, Ort.Tensor> | null = null;
    let step: readonly number[] = prompt;
    for (let n = 0; n < count; n++) {
      const out = await this.session.run(this.feeds(step, past, seq.length - step.length));
      const logits = out.logits!.data as Float32Array;
      const last = (step.length - 1) * this.vocab;
      let best = 0;
      for (let i = 1; i < this.vocab; i++) if (logits[last + i]! > logits[last + best]!) best = i;
      seq.push(best);
      past = out as Record<string, Ort.Tensor>;
      step = [best];
    }
    return seq;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
