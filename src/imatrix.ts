/**
 * `quantkit imatrix`: llama.cpp's importance matrix computed with quantkit's own Llama forward pass
 * (native/src/model/llama.cc). For every linear layer llama-imatrix watches (the blk.* matrices), the
 * sum over tokens of each input column's square and the number of tokens, written in llama.cpp's GGUF
 * imatrix format (src/formats/imatrix-file.ts) under llama.cpp's tensor names, so `quantize --imatrix`
 * and llama-quantize both read it.
 *
 * Text as llama-imatrix takes it: the whole file tokenized as one text (an `<|endoftext|>` line is text
 * too), cut into chunks of `ctx` tokens, each chunk's first token replaced by BOS. (Tokenizing the
 * stories one by one instead moves every chunk boundary: the values then differ from llama-imatrix's by
 * several times more.) The forward pass collects every input's full
 * second-moment matrix (the same statistics GPTQ uses) and the diagonal is kept: memory grows with the
 * square of the layer widths, which is why this runs on small models (it refuses beyond MAX_STATS_BYTES).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Checkpoint } from './checkpoint.js';
import { QuantkitError, ioError } from './errors.js';
import { LlamaModel, llamaConfig } from './eval/llama.js';
import { Tokenizer } from './eval/tokenizer.js';
import { ggufArchitecture } from './formats/gguf-arch.js';
import type { ImatrixEntry, ImatrixFile } from './formats/imatrix-file.js';

export interface ImatrixOptions {
  /** The calibration text file (read whole, as llama-imatrix reads it). */
  text: string;
  /** Tokens per chunk (llama-imatrix's -c; default 512, at most the model's context). */
  ctx?: number;
  /** Use at most this many chunks (default: all the text holds). */
  chunks?: number;
  /** Also collect output.weight's input (llama-imatrix --process-output); needs an untied lm_head. */
  processOutput?: boolean;
  threads?: number;
}

/** The forward pass's statistics buffers are refused beyond this (they are quadratic in layer width). */
export const MAX_STATS_BYTES = 4 * 2 ** 30;

/** Computes the importance matrix of the model in `modelDir`; the result is ready for writeImatrixFile. */
export async function computeImatrix(modelDir: string, o: ImatrixOptions): Promise<Omit<ImatrixFile, 'path' | 'format'>> {
  const ckpt = await Checkpoint.open(modelDir);
  try {
    const config = llamaConfig(ckpt.config, ckpt.dir);
    const maxCtx = Number(ckpt.config?.max_position_embeddings ?? Infinity);
    const ctx = o.ctx ?? Math.min(512, maxCtx);
    if (!(Number.isSafeInteger(ctx) && ctx >= 16 && ctx <= maxCtx))
      throw new QuantkitError('ERR_USAGE', `--ctx must be an integer from 16 (llama-imatrix skips shorter batches) to the model's context ${maxCtx} (got ${ctx})`);
    if (o.chunks !== undefined && !(Number.isSafeInteger(o.chunks) && o.chunks >= 1)) throw new QuantkitError('ERR_USAGE', `--chunks must be a positive integer (got ${o.chunks})`);
    const { hidden: d, ffn, layers: L, heads, headDim } = config;
    const statsBytes = 4 * (L * (2 * d * d + (heads * headDim) ** 2 + ffn * ffn) + d * d);
    if (statsBytes > MAX_STATS_BYTES)
      throw new QuantkitError('ERR_USAGE', `the forward pass would hold ${(statsBytes / 2 ** 30).toFixed(1)} GiB of input statistics (full second moments, quadratic in the layer widths; limit ${MAX_STATS_BYTES / 2 ** 30} GiB): use llama-imatrix for a model this wide`, { file: ckpt.dir });

    const tok = await Tokenizer.fromFile(join(ckpt.dir, 'tokenizer.json'));
    const bos = Number(ckpt.config?.bos_token_id ?? 1);
    const text = await readFile(o.text, 'utf8').catch((e: unknown) => {
      throw ioError('ERR_USAGE', o.text, e, 'cannot read the calibration text');
    });
    const stream = tok.encode(text);
    const available = Math.floor(stream.length / ctx);
    if (available === 0) throw new QuantkitError('ERR_USAGE', `the text holds ${stream.length} tokens, fewer than one chunk of ${ctx}`, { file: o.text });
    const chunks = Math.min(available, o.chunks ?? available);
    const tokens = Int32Array.from(stream.slice(0, chunks * ctx));
    for (let c = 0; c < chunks; c++) tokens[c * ctx] = bos;

    const model = await LlamaModel.load(ckpt);
    const stats = await model.inputStats(tokens, ctx, o.threads);
    const arch = ggufArchitecture(ckpt.config, ckpt.dir);
    const count = chunks * ctx;
    const entries = new Map<string, ImatrixEntry>();
    /** The diagonal of the n x n matrix at `offset` of `m`: each column's sum of squares. */
    const diagonal = (m: Float32Array, n: number, offset: number) => {
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = m[offset + i * n + i]!;
      return v;
    };
    const add = (hfName: string, sums: Float32Array) => {
      const name = arch.map(hfName)?.name;
      if (!name) throw new QuantkitError('ERR_PLAN', `llama.cpp's ${arch.arch} architecture has no tensor for it`, { file: ckpt.dir, tensor: hfName });
      entries.set(name, { sums, counts: [count] });
    };
    const nq = heads * headDim;
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}.`;
      const attn = diagonal(stats.attnIn, d, l * d * d);
      for (const w of ['q_proj', 'k_proj', 'v_proj']) add(`${p}self_attn.${w}.weight`, attn);
      add(`${p}self_attn.o_proj.weight`, diagonal(stats.oIn, nq, l * nq * nq));
      const mlp = diagonal(stats.mlpIn, d, l * d * d);
      for (const w of ['gate_proj', 'up_proj']) add(`${p}mlp.${w}.weight`, mlp);
      add(`${p}mlp.down_proj.weight`, diagonal(stats.downIn, ffn, l * ffn * ffn));
    }
    if (o.processOutput) {
      if (!ckpt.tensors.some((t) => t.name === 'lm_head.weight'))
        throw new QuantkitError('ERR_USAGE', '--process-output: the output head is tied to the embedding (no lm_head.weight), which llama.cpp names token_embd.weight and llama-imatrix does not collect', { file: ckpt.dir });
      add('lm_head.weight', diagonal(stats.final, d, 0));
    }
    return { entries, datasets: [o.text], chunkCount: chunks, chunkSize: ctx };
  } finally {
    await ckpt.close();
  }
}
