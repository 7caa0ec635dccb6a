/**
 * Model-level accuracy: perplexity on an evaluation text, and how far a quantized model's next-token
 * distribution moves from the original's (KL divergence, top-1 agreement).
 *
 * Protocol (the one the reference numbers in ../shared/README.md use): the text is split into documents
 * at lines that hold only `<|endoftext|>` (a text without such lines is one document); each document is
 * BOS + its tokens, cut at `maxTokens`; every token after BOS is predicted from the ones before it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Checkpoint } from '../checkpoint.js';
import { QuantkitError, ioError } from '../errors.js';
import type { LlamaModel } from './llama.js';
import { Tokenizer } from './tokenizer.js';

export const DOCUMENT_SEPARATOR = /^<\|endoftext\|>$/m;

export async function readDocuments(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch((e) => {
    throw ioError('ERR_EVAL', file, e, 'cannot read the evaluation text');
  });
  return text.split(DOCUMENT_SEPARATOR).map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Token sequences: BOS + tokens, at most maxTokens long. */
export function tokenSequences(docs: readonly string[], tok: Tokenizer, bos: number, maxTokens: number): number[][] {
  return docs.map((d) => [bos, ...tok.encode(d)].slice(0, maxTokens)).filter((s) => s.length >= 2);
}

/** The token sequences of an evaluation text for a checkpoint (its tokenizer.json and BOS), as report and quantize evaluate. */
export async function evaluationSequences(ckpt: Checkpoint, file: string, maxTokens: number): Promise<number[][]> {
  const tok = await Tokenizer.fromFile(join(ckpt.dir, 'tokenizer.json'));
  const bos = Number(ckpt.config?.bos_token_id ?? 1);
  const seqs = tokenSequences(await readDocuments(file), tok, bos, maxTokens);
  if (seqs.length === 0) throw new QuantkitError('ERR_EVAL', 'the evaluation text has no document of two or more tokens', { file });
  return seqs;
}

/** log-softmax of one row of logits, in double. */
function logSoftmax(logits: Float32Array, offset: number, vocab: number, out: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[offset + i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < vocab; i++) out[i] = logits[offset + i]! - lse;
}

export interface Perplexity {
  perplexity: number;
  /** Mean negative log-likelihood per predicted token (nats). */
  nll: number;
  tokens: number;
}

export interface Divergence extends Perplexity {
  /** KL(original || quantized) per predicted token, nats: mean and 99th percentile. */
  kl_mean: number;
  kl_p99: number;
  /** Share of positions where both models' most likely next token is the same. */
  top1_agreement: number;
}

/** The original model's log-probabilities, kept to compare quantized variants against. */
export class Reference {
  private constructor(
    readonly sequences: number[][],
    private readonly logProbs: Float32Array[],
    readonly vocab: number,
    readonly result: Perplexity,
  ) {}

  static async compute(model: LlamaModel, sequences: number[][], threads = 1): Promise<Reference> {
    const vocab = model.config.vocab;
    const rows = new Float64Array(vocab);
    const kept: Float32Array[] = [];
    let nll = 0, n = 0;
    for (const seq of sequences) {
      const logits = await model.logits(seq, threads);
      const lp = new Float32Array((seq.length - 1) * vocab);
      for (let t = 0; t + 1 < seq.length; t++) {
        logSoftmax(logits, t * vocab, vocab, rows);
        nll -= rows[seq[t + 1]!]!;
        n++;
        for (let i = 0; i < vocab; i++) lp[t * vocab + i] = rows[i]!;
      }
      kept.push(lp);
    }
    return new Reference(sequences, kept, vocab, { perplexity: Math.exp(nll / n), nll: nll / n, tokens: n });
  }

  /** Perplexity of `model` (the reference forward pass, or any runtime's logits) and its divergence from the reference, on the same sequences. */
  async compare(model: Pick<LlamaModel, 'logits'>, threads = 1): Promise<Divergence> {
    const vocab = this.vocab;
    const q = new Float64Array(vocab);
    const kls: number[] = [];
    let nll = 0, agree = 0;
    for (let s = 0; s < this.sequences.length; s++) {
      const seq = this.sequences[s]!;
      const logits = await model.logits(seq, threads);
      const ref = this.logProbs[s]!;
      for (let t = 0; t + 1 < seq.length; t++) {
        logSoftmax(logits, t * vocab, vocab, q);
        nll -= q[seq[t + 1]!]!;
        let kl = 0, bestP = 0, bestQ = 0;
        for (let i = 0; i < vocab; i++) {
          const lp = ref[t * vocab + i]!;
          kl += Math.exp(lp) * (lp - q[i]!);
          if (lp > ref[t * vocab + bestP]!) bestP = i;
          if (q[i]! > q[bestQ]!) bestQ = i;
        }
        kls.push(Math.max(0, kl));
        if (bestP === bestQ) agree++;
      }
    }
    const n = kls.length;
    const sorted = Float64Array.from(kls).sort();
    return {
      perplexity: Math.exp(nll / n),
      nll: nll / n,
      tokens: n,
      kl_mean: kls.reduce((a, b) => a + b, 0) / n,
      kl_p99: sorted[Math.min(n - 1, Math.ceil(0.99 * n) - 1)]!,
      top1_agreement: agree / n,
    };
  }
}
