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
 * Recognises Llama-style names (Llama, Mistral, Qwen2, Gemma, the bundled models) and Phi-3's fused
 * qkv_proj/gate_up_proj; for anything else the result is empty and the search runs unweighted.
 */
import type { Checkpoint, CheckpointTensor } from '../checkpoint.js';
import { BufferPool } from '../buffer-pool.js';
import { QuantkitError } from '../errors.js';
import { addon } from '../native.js';
import { type FloatDtype, dtypeSize, isKernelFloat } from '../safetensors/dtypes.js';
import { toFloat32 } from '../convert.js';

// Phi-3 stores q/k/v as one qkv_proj (q rows, then k, then v) and gate/up as one gate_up_proj (gate
// rows, then up): the same inputs, so the same importance, and their parts are read as row ranges.
const ATTN_INPUTS = ['self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight', 'self_attn.qkv_proj.weight'];
const MLP_INPUTS = ['mlp.gate_proj.weight', 'mlp.up_proj.weight', 'mlp.gate_up_proj.weight'];

function mean(a: Float32Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s / a.length;
}

/** A stored float matrix as the addon's file readers take it: the open file, the offset, its layout. */
interface FileMatrix {
  fd: number;
  offset: number;
  srcDtype: FloatDtype;
  rows: number;
  cols: number;
}

/**
 * Runs one of the addon's file readers on rows [firstRow, firstRow + rows) of the stored float matrix t,
 * which must have `cols` columns: refuses any other tensor (ERR_PLAN), and names the file and the tensor
 * in a read error. A row range is how a fused matrix (Phi-3's qkv_proj, gate_up_proj) gives its parts.
 */
async function readInAddon(ckpt: Checkpoint, t: CheckpointTensor, firstRow: number, rows: number, cols: number, reader: (m: FileMatrix) => Promise<void>): Promise<void> {
  const where = { file: t.file, tensor: t.name };
  if (!isKernelFloat(t.dtype)) throw new QuantkitError('ERR_PLAN', `cannot read ${t.dtype} weights as floats`, where);
  const size = dtypeSize(t.dtype);
  if (t.shape.length !== 2 || t.shape[1] !== cols || firstRow < 0 || firstRow + rows > t.shape[0]! || t.bytes !== t.shape[0]! * cols * size)
    throw new QuantkitError('ERR_PLAN', `expected rows [${firstRow}, ${firstRow + rows}) of a matrix of ${cols} columns for the importance estimate, found [${t.shape.join(', ')}]`, where);
  try {
    const at = ckpt.location(t);
    await reader({ fd: at.fd, offset: at.offset + firstRow * cols * size, srcDtype: t.dtype, rows, cols });
  } catch (e) {
    throw new QuantkitError('ERR_SAFETENSORS_DATA', (e as Error).message, where);
  }
}

/**
 * sum_i W[j, i]^2 * a[i] for every row j of rows [firstRow, firstRow + rows) of the stored matrix t,
 * read and summed by the addon's threads straight from the checkpoint file (each row in double in one
 * fixed order, eight interleaved partial sums, so the same floats for any thread count or CPU).
 */
async function weightedRowSquares(ckpt: Checkpoint, t: CheckpointTensor, firstRow: number, rows: number, cols: number, a: Float32Array, threads?: number): Promise<Float32Array> {
  const out = new Float32Array(rows);
  await readInAddon(ckpt, t, firstRow, rows, cols, (m) => addon().weightedRowSquaresFile({ ...m, a, out, threads }));
  return out;
}

/** Rows [first, first + rows) of a stored matrix. */
interface RowRange {
  t: CheckpointTensor;
  first: number;
  rows: number;
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
  // Norm gains are read whole (into reused buffers); the embedding and the matrices are summed by the
  // addon as it reads them (columnSquaresFile, weightedRowSquares).
  const withBytes = async <T>(t: CheckpointTensor, fn: (bytes: Uint8Array) => T | Promise<T>): Promise<T> => {
    signal?.throwIfAborted();
    const bytes = await ckpt.read(t, pool.acquire(t.bytes));
    try {
      return await fn(bytes);
    } finally {
      pool.release(bytes);
    }
  };
  /** Weighted row squares of rows [m.first, m.first + m.rows) of m.t. */
  const rowSquares = (m: RowRange, cols: number, a: Float32Array): Promise<Float32Array> => {
    signal?.throwIfAborted();
    return weightedRowSquares(ckpt, m.t, m.first, m.rows, cols, a, threads);
  };
  const read = (t: CheckpointTensor) => withBytes(t, (b) => toFloat32(b, t.dtype));
  const gain = async (name: string): Promise<Float32Array | undefined> => {
    const t = stored(name);
    if (!t || t.shape.length !== 1 || t.shape[0] !== hidden) return undefined;
    const g = await read(t);
    return addOne ? g.map((v) => v + 1) : g;
  };

  // The residual stream's per-dimension variance, starting from the embedding rows' (read and summed
  // by the addon: a 128k-token vocabulary's embedding took 1 s in JS).
  const residual = new Float32Array(hidden);
  {
    const rows = embed.shape[0]!;
    signal?.throwIfAborted();
    await readInAddon(ckpt, embed, 0, rows, hidden, (m) => addon().columnSquaresFile({ ...m, out: residual, threads }));
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
  const headsOk = Number.isSafeInteger(heads) && Number.isSafeInteger(kvHeads) && kvHeads > 0 && heads % kvHeads === 0;
  const whole = (t: CheckpointTensor): RowRange => ({ t, first: 0, rows: t.shape[0]! });
  // The value rows of layer prefix p: v_proj, or the last kvHeads heads of a fused qkv_proj.
  const valueRows = (p: string): (RowRange & { headDim: number }) | undefined => {
    if (!headsOk) return undefined;
    const v = stored(`${p}self_attn.v_proj.weight`);
    if (v) return v.shape[1] === hidden && v.shape[0]! % kvHeads === 0 ? { ...whole(v), headDim: v.shape[0]! / kvHeads } : undefined;
    const qkv = stored(`${p}self_attn.qkv_proj.weight`);
    if (!qkv || qkv.shape.length !== 2 || qkv.shape[1] !== hidden || qkv.shape[0]! % (heads + 2 * kvHeads) !== 0) return undefined;
    const headDim = qkv.shape[0]! / (heads + 2 * kvHeads);
    return { t: qkv, first: (heads + kvHeads) * headDim, rows: kvHeads * headDim, headDim };
  };
  // The gate and up rows of layer prefix p: gate_proj and up_proj, or the two halves of gate_up_proj.
  const mlpRows = (p: string): { gate: RowRange; up: RowRange } | undefined => {
    const up = stored(`${p}mlp.up_proj.weight`), gate = stored(`${p}mlp.gate_proj.weight`);
    if (up && gate) return up.shape[1] === hidden && gate.shape[1] === hidden && gate.shape[0] === up.shape[0] ? { gate: whole(gate), up: whole(up) } : undefined;
    const fused = stored(`${p}mlp.gate_up_proj.weight`);
    if (!fused || fused.shape.length !== 2 || fused.shape[1] !== hidden || fused.shape[0]! % 2 !== 0) return undefined;
    const ffn = fused.shape[0]! / 2;
    return { gate: { t: fused, first: 0, rows: ffn }, up: { t: fused, first: ffn, rows: ffn } };
  };
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    const attnIn = await normalisedInputs(`${p}input_layernorm.weight`, ATTN_INPUTS.map((n) => p + n));
    if (!attnIn) return out;

    const v = valueRows(p), o = stored(`${p}self_attn.o_proj.weight`);
    if (v && o && o.shape[0] === hidden) {
      const rn = attnIn;  // g^2 * r / mean(r)
      const sv = await rowSquares(v, hidden, rn);
      const oCols = o.shape[1]!;
      const so = new Float32Array(oCols);
      for (let c = 0; c < oCols; c++) so[c] = sv[Math.floor(c / v.headDim / (heads / kvHeads)) * v.headDim + (c % v.headDim)] ?? 0;
      const add = await rowSquares(whole(o), oCols, so);
      for (let i = 0; i < hidden; i++) residual[i] = residual[i]! + 0.5 * add[i]!;
    }

    const mlpIn = await normalisedInputs(`${p}post_attention_layernorm.weight`, MLP_INPUTS.map((n) => p + n));
    if (!mlpIn) return out;
    const mlp = mlpRows(p), down = stored(`${p}mlp.down_proj.weight`);
    if (mlp && down && down.shape[0] === hidden && down.shape[1] === mlp.up.rows) {
      const su = await rowSquares(mlp.up, hidden, mlpIn);
      const sg = await rowSquares(mlp.gate, hidden, mlpIn);
      const sd = su.map((u, j) => 0.3 * u * sg[j]!);
      const add = await rowSquares(whole(down), mlp.up.rows, sd);
      for (let i = 0; i < hidden; i++) residual[i] = residual[i]! + add[i]!;
    }
  }
  const gFinal = await gain('model.norm.weight');
  const head = stored('lm_head.weight') ?? embed;
  if (gFinal && head.shape[1] === hidden) out.set(head.name, normalisedInput(gFinal, residual));
  return out;
}
