/**
 * Per-column importance for the scale search, estimated from the weights alone (no calibration data).
 *
 * A quantization error in column j of a matrix costs in proportion to how large input j is. In a
 * pre-norm transformer the input of q/k/v (and of gate/up, and of the output head) is
 * RMSNorm(residual) * g, so column j is scaled by the norm gain g_j and by how large residual
 * dimension j is relative to the others. Both can be read off the checkpoint:
 *  - g is stored (Gemma stores g - 1);
 *  - the residual's per-dimension variance starts as the embedding's (mean of E[:, j]^2 over the
 *    vocabulary) and grows by what each block writes into it: the o_proj and down_proj rows, weighted
 *    by a rough estimate of their inputs' variances (v_proj rows through the attention norm; gate and
 *    up rows through the MLP norm). The 0.5 and 0.3 factors stand for attention averaging and the
 *    SiLU gate's shrinkage; they are heuristics, checked by perplexity, not derived.
 * Other matrices (o_proj, down_proj, anything unrecognised) get no weights: their inputs are not
 * normalised, and estimating them was no better in our measurements (docs/quality.md).
 *
 * Recognises Llama-style names (Llama, Mistral, Qwen2, Gemma, the bundled models); for anything else
 * the result is empty and the search runs unweighted.
 */
import type { Checkpoint, CheckpointTensor } from '../checkpoint.js';
import { BufferPool } from '../buffer-pool.js';
import { QuantkitError } from '../errors.js';
import { addon } from '../native.js';
import { isKernelFloat } from '../safetensors/dtypes.js';
import { toFloat32 } from '../convert.js';

const ATTN_INPUTS = ['self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight'];
const MLP_INPUTS = ['mlp.gate_proj.weight', 'mlp.up_proj.weight'];

function mean(a: Float32Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s / a.length;
}

/**
 * Calls fn with each row of a stored matrix as f32, one row at a time (no f32 copy of the matrix). BF16
 * rows (the common case) are widened into one reused row: a fresh array per row cost more in allocation
 * and garbage collection than the sums themselves.
 */
function forEachRow(bytes: Uint8Array, dtype: CheckpointTensor['dtype'], rows: number, fn: (row: Float32Array, r: number) => void): void {
  const rowBytes = bytes.length / rows;
  if (dtype === 'BF16' && bytes.byteOffset % 2 === 0 && LITTLE_ENDIAN) {
    const cols = rowBytes / 2;
    const h = new Uint16Array(bytes.buffer, bytes.byteOffset, rows * cols);
    const bits = new Int32Array(cols), row = new Float32Array(bits.buffer);
    for (let r = 0; r < rows; r++) {
      for (let i = 0, at = r * cols; i < cols; i++) bits[i] = h[at + i]! << 16;
      fn(row, r);
    }
    return;
  }
  for (let r = 0; r < rows; r++) fn(toFloat32(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), dtype), r);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * sum_i W[j, i]^2 * a[i] for every row j, in the addon (threads over rows; each row summed in double in
 * column order, so the same floats as the JS loop it replaced, for any thread count).
 */
async function weightedRowSquares(bytes: Uint8Array, dtype: CheckpointTensor['dtype'], rows: number, cols: number, a: Float32Array, threads?: number): Promise<Float32Array> {
  const out = new Float32Array(rows);
  if (!isKernelFloat(dtype)) throw new QuantkitError('ERR_PLAN', `cannot read ${dtype} weights as floats`);
  await addon().weightedRowSquares({ src: bytes, srcDtype: dtype, rows, cols, a, out, threads });
  return out;
}

/**
 * Reads the matrices of the pass one ahead: taking matrix i starts the read of the one after it in
 * `order`, so that read overlaps the row sums of matrix i (reading is most of the pass's time; the
 * sums run on the addon's threads). A matrix taken out of order is read then, a tensor not in `order`
 * is read without touching the read ahead; an unused read is dropped by close().
 */
class ReadAhead {
  private pending?: { t: CheckpointTensor; bytes: Promise<Uint8Array> };

  constructor(private readonly ckpt: Checkpoint, private readonly pool: BufferPool, private readonly order: CheckpointTensor[]) {}

  private start(t: CheckpointTensor): Promise<Uint8Array> {
    const bytes = this.ckpt.read(t, this.pool.acquire(t.bytes));
    bytes.catch(() => undefined);  // awaited by take() or close()
    return bytes;
  }

  async take(t: CheckpointTensor): Promise<Uint8Array> {
    const at = this.order.indexOf(t);
    if (at < 0) return this.ckpt.read(t, this.pool.acquire(t.bytes));  // not one of the matrices (a norm's gain, the embedding)
    let bytes: Promise<Uint8Array>;
    if (this.pending?.t === t) bytes = this.pending.bytes;
    else {
      await this.close();
      bytes = this.start(t);
    }
    this.pending = undefined;
    const got = await bytes;
    const next = this.order[at + 1];
    if (next) this.pending = { t: next, bytes: this.start(next) };
    return got;
  }

  async close(): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    if (p) this.pool.release(await p.bytes.catch(() => undefined));
  }
}

/** g^2 * r / mean(r): the importance of each input column of a matrix fed by RMSNorm(residual) * g. */
function normalisedInput(gain: Float32Array, residual: Float32Array): Float32Array {
  const m = mean(residual) || 1;
  return gain.map((g, i) => g * g * (residual[i]! / m));
}

/**
 * Column importance by tensor name (as stored in the checkpoint; a tied output head shares the
 * embedding's entry). Reads each matrix it needs once, one at a time.
 */
export async function estimateColumnImportance(ckpt: Checkpoint, signal?: AbortSignal, pool = new BufferPool(), threads?: number): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  const byName = new Map(ckpt.tensors.map((t) => [t.name, t]));
  const stored = (name: string): CheckpointTensor | undefined => byName.get(name) ?? byName.get(ckpt.aliases.get(name) ?? '');
  const config = ckpt.config ?? {};
  const layers = Number(config.num_hidden_layers);
  const embed = stored('model.embed_tokens.weight');
  if (!embed || embed.shape.length !== 2 || !Number.isSafeInteger(layers) || layers < 1) return out;
  const hidden = embed.shape[1]!;
  const addOne = config.model_type === 'gemma' || config.model_type === 'gemma2';
  // The matrices are read into reused buffers (fresh ones cost first-touch page faults), the next
  // matrix of the pass while the current one is summed.
  const order: CheckpointTensor[] = [];
  for (let l = 0; l < layers; l++)
    for (const n of ['self_attn.v_proj.weight', 'self_attn.o_proj.weight', 'mlp.up_proj.weight', 'mlp.gate_proj.weight', 'mlp.down_proj.weight']) {
      const t = stored(`model.layers.${l}.${n}`);
      if (t) order.push(t);
    }
  const ahead = new ReadAhead(ckpt, pool, order);
  const withBytes = async <T>(t: CheckpointTensor, fn: (bytes: Uint8Array) => T | Promise<T>): Promise<T> => {
    signal?.throwIfAborted();
    const bytes = await ahead.take(t);
    try {
      return await fn(bytes);
    } finally {
      pool.release(bytes);
    }
  };
  try {
    const read = (t: CheckpointTensor) => withBytes(t, (b) => toFloat32(b, t.dtype));
    const gain = async (name: string): Promise<Float32Array | undefined> => {
      const t = stored(name);
      if (!t || t.shape.length !== 1 || t.shape[0] !== hidden) return undefined;
      const g = await read(t);
      return addOne ? g.map((v) => v + 1) : g;
    };

    // The residual stream's per-dimension variance, starting from the embedding rows.
    const residual = new Float32Array(hidden);
    {
      const rows = embed.shape[0]!;
      await withBytes(embed, (b) =>
        forEachRow(b, embed.dtype, rows, (e) => {
          for (let i = 0; i < hidden; i++) residual[i] = residual[i]! + e[i]! * e[i]!;
        }),
      );
      for (let i = 0; i < hidden; i++) residual[i] = residual[i]! / rows;
    }
    // Gives the matrices fed by RMSNorm(residual) * g (norm `gainName`) their importance; undefined when
    // the norm is missing (then the estimate stops: later layers would be guesses).
    const normalisedInputs = async (gainName: string, names: string[]): Promise<Float32Array | undefined> => {
      const g = await gain(gainName);
      if (!g) return undefined;
      const importance = normalisedInput(g, residual);
      for (const n of names) {
        const t = stored(n);
        if (t?.shape[1] === hidden) out.set(t.name, importance);
      }
      return importance;
    };
    const heads = Number(config.num_attention_heads);
    const kvHeads = Number(config.num_key_value_heads ?? heads);
    for (let l = 0; l < layers; l++) {
      const p = `model.layers.${l}.`;
      const attnIn = await normalisedInputs(`${p}input_layernorm.weight`, ATTN_INPUTS.map((n) => p + n));
      if (!attnIn) return out;

      const v = stored(`${p}self_attn.v_proj.weight`), o = stored(`${p}self_attn.o_proj.weight`);
      if (v && o && v.shape[1] === hidden && o.shape[0] === hidden && Number.isSafeInteger(heads) && kvHeads > 0 && heads % kvHeads === 0) {
        const rn = attnIn;  // g^2 * r / mean(r)
        const sv = await withBytes(v, (b) => weightedRowSquares(b, v.dtype, v.shape[0]!, hidden, rn, threads));
        const headDim = v.shape[0]! / kvHeads;
        const oCols = o.shape[1]!;
        const so = new Float32Array(oCols);
        for (let c = 0; c < oCols; c++) so[c] = sv[Math.floor(c / headDim / (heads / kvHeads)) * headDim + (c % headDim)] ?? 0;
        const add = await withBytes(o, (b) => weightedRowSquares(b, o.dtype, hidden, oCols, so, threads));
        for (let i = 0; i < hidden; i++) residual[i] = residual[i]! + 0.5 * add[i]!;
      }

      const mlpIn = await normalisedInputs(`${p}post_attention_layernorm.weight`, MLP_INPUTS.map((n) => p + n));
      if (!mlpIn) return out;
      const up = stored(`${p}mlp.up_proj.weight`), gate = stored(`${p}mlp.gate_proj.weight`), down = stored(`${p}mlp.down_proj.weight`);
      if (up && gate && down && down.shape[0] === hidden) {
        const ffn = up.shape[0]!;
        const su = await withBytes(up, (b) => weightedRowSquares(b, up.dtype, ffn, hidden, mlpIn, threads));
        const sg = await withBytes(gate, (b) => weightedRowSquares(b, gate.dtype, ffn, hidden, mlpIn, threads));
        const sd = su.map((u, j) => 0.3 * u * sg[j]!);
        const add = await withBytes(down, (b) => weightedRowSquares(b, down.dtype, hidden, ffn, sd, threads));
        for (let i = 0; i < hidden; i++) residual[i] = residual[i]! + add[i]!;
      }
    }
    const gFinal = await gain('model.norm.weight');
    const head = stored('lm_head.weight') ?? embed;
    if (gFinal && head.shape[1] === hidden) out.set(head.name, normalisedInput(gFinal, residual));
    return out;
  } finally {
    await ahead.close();
  }
}
