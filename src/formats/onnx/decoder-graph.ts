/**
 * The decoder graph, laid out the way ONNX Runtime GenAI's model builder lays out a Llama decoder and
 * transformers.js runs it:
 *  inputs  input_ids [batch_size, sequence_length] int64, attention_mask [batch_size, total_sequence_length]
 *          int64, past_key_values.<i>.key/.value [batch_size, kv_heads, past_sequence_length, head_dim];
 *  outputs logits [batch_size, sequence_length, vocab] float32, present.<i>.key/.value
 *          [batch_size, kv_heads, total_sequence_length, head_dim].
 * The KV heads and head size are fixed numbers: transformers.js builds the first, empty cache from these
 * declared shapes (a named last dimension would give GroupQueryAttention an empty cache of the wrong
 * size), and the past length is a named dimension it sets to 0.
 *
 * Per layer: RMSNorm (SimplifiedLayerNormalization, then SkipSimplifiedLayerNormalization carrying the
 * residual sum), q/k/v projections (MatMulNBits or MatMul), com.microsoft GroupQueryAttention with the
 * rotary embedding fused (rotate-half order, cos/sin caches), the output projection, RMSNorm, the
 * SiLU-gated MLP. GroupQueryAttention takes seqlens_k (tokens per sequence - 1) and
 * total_sequence_length from the attention mask: ReduceSum - 1 and the mask's width, as int32. The
 * rotary positions follow from them (0.. for the prompt, the past length after), so there is no
 * position_ids input.
 */
import { f32ToF16 } from '../../convert.js';
import { QuantkitError } from '../../errors.js';
import type { DecoderArch } from './decoder-arch.js';
import { AttrType, type AttributeMessage, type NodeMessage, OnnxType, type OnnxTypeId, type TensorMessage, type ValueInfoMessage, valueInfo } from './proto.js';

/** How a graph key's weight is stored. */
export type StoredWeight =
  | { kind: 'float'; name: string }
  | { kind: 'nbits'; data: string; scales: string; zeroPoints?: string; k: number; n: number; bits: number; block: number }
  | { kind: 'gather-nbits'; data: string; scales: string; zeroPoints?: string; bits: number; block: number };

export interface DecoderGraph {
  nodes: NodeMessage[];
  inputs: ValueInfoMessage[];
  outputs: ValueInfoMessage[];
  /** Small constants (shapes, axes), stored inside the .onnx file. */
  constants: TensorMessage[];
}

const MS = 'com.microsoft';

function attr(name: string, v: number | number[] | string, float = false): AttributeMessage {
  if (typeof v === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: v };
  return float ? { name, type: AttrType.FLOAT, f: v } : { name, type: AttrType.INT, i: v };
}

class Builder {
  readonly nodes: NodeMessage[] = [];
  readonly constants: TensorMessage[] = [];
  private count = 0;

  /** Adds a node; returns its output names (`outputs` names them, a number counts fresh ones). */
  op(opType: string, inputs: string[], outputs: number | string[] = 1, attrs: AttributeMessage[] = [], domain = ''): string[] {
    const id = this.count++;
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => `/${opType}_${id}/output_${i}`) : outputs;
    this.nodes.push({ name: `/${opType}_${id}`, opType, input: inputs, output: outs, ...(domain ? { domain } : {}), ...(attrs.length ? { attribute: attrs } : {}) });
    return outs;
  }

  one(opType: string, inputs: string[], attrs: AttributeMessage[] = [], domain = ''): string {
    return this.op(opType, inputs, 1, attrs, domain)[0]!;
  }

  /** An int64 constant; a name asked for again returns the constant already made (same values by construction). */
  int64(name: string, values: number[], dims: number[]): string {
    if (this.constants.some((c) => c.name === name)) return name;
    const raw = new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer);
    this.constants.push({ name, dataType: OnnxType.INT64, dims, rawData: raw });
    return name;
  }

  /** A float scalar of the activations' type. */
  scalar(name: string, value: number, type: OnnxTypeId): string {
    const raw = type === OnnxType.FLOAT ? new Uint8Array(Float32Array.of(value).buffer) : new Uint8Array(Uint16Array.of(f32ToF16(value)).buffer);
    this.constants.push({ name, dataType: type, dims: [], rawData: raw });
    return name;
  }
}

/** The sequence state every explicit attention layer shares: rotary tables for the new tokens and the mask. */
interface ExplicitState {
  cos: string;
  sin: string;
  /** [batch, 1, sequence_length, total_sequence_length] bool: which keys each new token may see. */
  allowed: string;
}

/**
 * What the explicit attention layers share, computed once: the new tokens' positions (past length
 * onwards), their rows of the rotary caches, and the causal (and sliding-window) mask joined with the
 * attention mask's padding.
 */
function explicitState(g: Builder, arch: DecoderArch, rotary: { cos: string; sin: string }): ExplicitState {
  const c = (n: string, v: number[], dims: number[]) => g.int64(`/model/attention/${n}`, v, dims);
  const dim = (x: string, axis: number) => g.one('Gather', [g.one('Shape', [x]), c(`axis_${axis}`, [axis], [])], [attr('axis', 0)]);
  const past = dim('past_key_values.0.key', 2);
  const total = dim('attention_mask', 1);
  const step = c('one', [1], []);
  const positions = g.one('Range', [past, total, step]); // [S]
  const keys = g.one('Range', [c('zero', [0], []), total, step]); // [T]
  const cos = g.one('Gather', [rotary.cos, positions], [attr('axis', 0)]);
  const sin = g.one('Gather', [rotary.sin, positions], [attr('axis', 0)]);
  const rows = g.one('Unsqueeze', [positions, c('axes_1', [1], [1])]); // [S, 1]
  let allowed = g.one('LessOrEqual', [keys, rows]); // [S, T]
  if (arch.slidingWindow > 0) allowed = g.one('And', [allowed, g.one('Greater', [keys, g.one('Sub', [rows, c('window', [arch.slidingWindow], [])])])]);
  const padding = g.one('Cast', [g.one('Unsqueeze', ['attention_mask', c('axes_1_2', [1, 2], [2])])], [attr('to', 9 /* BOOL */)]); // [B, 1, 1, T]
  return { cos, sin, allowed: g.one('And', [padding, allowed]) };
}

/**
 * Attention with plain ONNX operators, for head sizes GroupQueryAttention does not take (ONNX Runtime's
 * CPU kernel needs a multiple of 16): rotate-half rotary, the new keys and values appended to the past
 * ones (the present outputs), KV heads repeated for their query groups, masked softmax.
 */
function explicitAttention(g: Builder, arch: DecoderArch, act: OnnxTypeId, s: ExplicitState, i: number, q: string, k: string, v: string): string {
  const { heads, kvHeads, headDim } = arch.dims;
  const c = (n: string, vals: number[], dims: number[]) => g.int64(`/model/layers.${i}/attn/${n}`, vals, dims);
  const split = (x: string, n: number) => g.one('Transpose', [g.one('Reshape', [x, c(`shape_${n}`, [0, 0, n, headDim], [4])])], [attr('perm', [0, 2, 1, 3])]); // [B, n, S, D]
  const half = c('half', [headDim / 2, headDim / 2], [2]);
  const rotate = (x: string) => {
    const [x1, x2] = g.op('Split', [x, half], 2, [attr('axis', -1)]) as [string, string];
    const a = g.one('Sub', [g.one('Mul', [x1, s.cos]), g.one('Mul', [x2, s.sin])]);
    const b = g.one('Add', [g.one('Mul', [x2, s.cos]), g.one('Mul', [x1, s.sin])]);
    return g.one('Concat', [a, b], [attr('axis', -1)]);
  };
  const key = g.op('Concat', [`past_key_values.${i}.key`, rotate(split(k, kvHeads))], [`present.${i}.key`], [attr('axis', 2)])[0]!;
  const value = g.op('Concat', [`past_key_values.${i}.value`, split(v, kvHeads)], [`present.${i}.value`], [attr('axis', 2)])[0]!;
  const repeat = (x: string) => {
    if (heads === kvHeads) return x;
    const grouped = g.one('Expand', [g.one('Unsqueeze', [x, c('axes_2', [2], [1])]), c('groups', [1, 1, heads / kvHeads, 1, 1], [5])]);
    return g.one('Reshape', [grouped, c('heads_shape', [0, heads, -1, headDim], [4])]);
  };
  const scores = g.one('Mul', [g.one('MatMul', [rotate(split(q, heads)), g.one('Transpose', [repeat(key)], [attr('perm', [0, 1, 3, 2])])]), g.scalar(`/model/layers.${i}/attn/scale`, 1 / Math.sqrt(headDim), act)]);
  const masked = g.one('Where', [s.allowed, scores, g.scalar(`/model/layers.${i}/attn/masked`, act === OnnxType.FLOAT ? -3.4e38 : -65504, act)]);
  const out = g.one('MatMul', [g.one('Softmax', [masked], [attr('axis', -1)]), repeat(value)]); // [B, H, S, D]
  return g.one('Reshape', [g.one('Transpose', [out], [attr('perm', [0, 2, 1, 3])]), c('merge_shape', [0, 0, heads * headDim], [3])]);
}

/**
 * Builds the graph. `weight(key)` says how each graph key is stored (undefined: absent, e.g. no bias);
 * `act` is the activations' float type; `cos`/`sin` name the rotary caches [maxPositions, headDim/2].
 */
export function buildDecoderGraph(arch: DecoderArch, act: OnnxTypeId, weight: (key: string) => StoredWeight | undefined, rotary: { cos: string; sin: string }): DecoderGraph {
  const { layers, heads, kvHeads, headDim, vocab, intermediate } = arch.dims;
  const g = new Builder();
  const need = (key: string): StoredWeight => {
    const w = weight(key);
    if (!w) throw new QuantkitError('ERR_PLAN', `the ${arch.type} decoder graph needs a tensor for '${key}' (${key === 'embed' ? 'model.embed_tokens.weight' : key === 'head' ? 'lm_head.weight or a tied embedding' : key === 'norm' ? 'model.norm.weight' : `layer ${key.split('.')[1]}'s ${key.split('.')[2]}`}), which the checkpoint lacks`);
    return w;
  };
  const floatName = (key: string): string => {
    const w = need(key);
    if (w.kind !== 'float') throw new Error(`decoder graph: ${key} must be a float tensor`);
    return w.name;
  };
  const linear = (x: string, key: string): string => {
    const w = need(key);
    let y: string;
    if (w.kind === 'nbits') {
      const inputs = [x, w.data, w.scales, ...(w.zeroPoints ? [w.zeroPoints] : [])];
      y = g.one('MatMulNBits', inputs, [attr('K', w.k), attr('N', w.n), attr('bits', w.bits), attr('block_size', w.block)], MS);
    } else if (w.kind === 'float') {
      // Weights stay in Hugging Face's [out, in] order; ONNX Runtime folds the constant transpose at load.
      y = g.one('MatMul', [x, g.one('Transpose', [w.name], [attr('perm', [1, 0])])]);
    } else throw new Error(`decoder graph: ${key} cannot be a projection`);
    const bias = weight(`${key}_bias`);
    if (bias) y = g.one('Add', [y, floatName(`${key}_bias`)]);
    return y;
  };

  const inputs: ValueInfoMessage[] = [
    valueInfo('input_ids', OnnxType.INT64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', OnnxType.INT64, ['batch_size', 'total_sequence_length']),
  ];
  const outputs: ValueInfoMessage[] = [valueInfo('logits', OnnxType.FLOAT, ['batch_size', 'sequence_length', vocab])];
  for (let i = 0; i < layers; i++)
    for (const kv of ['key', 'value']) {
      inputs.push(valueInfo(`past_key_values.${i}.${kv}`, act, ['batch_size', kvHeads, 'past_sequence_length', headDim]));
      outputs.push(valueInfo(`present.${i}.${kv}`, act, ['batch_size', kvHeads, 'total_sequence_length', headDim]));
    }

  // GroupQueryAttention's sequence lengths from the mask.
  let seqlensK: string | undefined, totalLength: string | undefined;
  if (useGroupQueryAttention(arch)) {
    const tokens = g.one('ReduceSum', ['attention_mask', g.int64('/model/constants/axes_1', [1], [1])], [attr('keepdims', 0)]);
    seqlensK = g.one('Cast', [g.one('Sub', [tokens, g.int64('/model/constants/one', [1], [])])], [attr('to', OnnxType.INT32)]);
    const width = g.one('Gather', [g.one('Shape', ['attention_mask']), g.int64('/model/constants/index_1', [1], [])], [attr('axis', 0)]);
    totalLength = g.one('Cast', [width], [attr('to', OnnxType.INT32)]);
  }

  const embed = need('embed');
  let x: string;
  if (embed.kind === 'gather-nbits') {
    const inputs = [embed.data, 'input_ids', embed.scales, ...(embed.zeroPoints ? [embed.zeroPoints] : [])];
    x = g.one('GatherBlockQuantized', inputs, [attr('gather_axis', 0), attr('quantize_axis', 1), attr('block_size', embed.block), attr('bits', embed.bits)], MS);
  } else if (embed.kind === 'float') {
    x = g.one('Gather', [embed.name, 'input_ids'], [attr('axis', 0)]);
  } else throw new Error('decoder graph: the embedding cannot be a MatMulNBits weight');

  const eps = attr('epsilon', arch.normEps, true);
  let residual = x;
  let pending: string | undefined; // the last block's output, not yet added to the residual
  const norm = (key: string): string => {
    if (pending === undefined) return g.one('SimplifiedLayerNormalization', [residual, floatName(key)], [attr('axis', -1), eps, attr('stash_type', 1)]);
    const [y, , , sum] = g.op('SkipSimplifiedLayerNormalization', [pending, residual, floatName(key)], 4, [eps], MS);
    residual = sum!;
    return y!;
  };

  const gqaAttrs = [attr('num_heads', heads), attr('kv_num_heads', kvHeads), attr('do_rotary', 1), attr('rotary_interleaved', 0), ...(arch.slidingWindow > 0 ? [attr('local_window_size', arch.slidingWindow - 1)] : [])]; // it sees local_window_size + 1 keys
  const explicit = useGroupQueryAttention(arch) ? undefined : explicitState(g, arch, rotary);
  for (let i = 0; i < layers; i++) {
    const L = `L.${i}.`;
    const h = norm(`${L}ln1`);
    let attn: string;
    if (explicit) {
      let q: string, k: string, v: string;
      if (arch.fusedQkv) [q, k, v] = g.op('Split', [linear(h, `${L}qkv`), g.int64(`/model/layers.${i}/attn/qkv_split`, [heads * headDim, kvHeads * headDim, kvHeads * headDim], [3])], 3, [attr('axis', -1)]) as [string, string, string];
      else [q, k, v] = [linear(h, `${L}q`), linear(h, `${L}k`), linear(h, `${L}v`)];
      attn = explicitAttention(g, arch, act, explicit, i, q, k, v);
    } else {
      const qkv = arch.fusedQkv ? [linear(h, `${L}qkv`), '', ''] : [linear(h, `${L}q`), linear(h, `${L}k`), linear(h, `${L}v`)];
      attn = g.op(
        'GroupQueryAttention',
        [...qkv, `past_key_values.${i}.key`, `past_key_values.${i}.value`, seqlensK!, totalLength!, rotary.cos, rotary.sin],
        [`/model/layers.${i}/attn/output`, `present.${i}.key`, `present.${i}.value`],
        gqaAttrs,
        MS,
      )[0]!;
    }
    pending = linear(attn, `${L}o`);
    const h2 = norm(`${L}ln2`);
    let gate: string, up: string;
    if (arch.fusedGateUp) {
      [gate, up] = g.op('Split', [linear(h2, `${L}gate_up`), g.int64(`/model/layers.${i}/mlp/split`, [intermediate, intermediate], [2])], 2, [attr('axis', -1)]) as [string, string];
    } else {
      gate = linear(h2, `${L}gate`);
      up = linear(h2, `${L}up`);
    }
    const silu = g.one('Mul', [gate, g.one('Sigmoid', [gate])]);
    pending = linear(g.one('Mul', [silu, up]), `${L}down`);
  }
  const final = norm('norm');
  const logits = linear(final, 'head');
  if (act === OnnxType.FLOAT) g.op('Identity', [logits], ['logits']);
  else g.op('Cast', [logits], ['logits'], [attr('to', OnnxType.FLOAT)]);
  return { nodes: g.nodes, inputs, outputs, constants: g.constants };
}

/** ONNX Runtime's GroupQueryAttention takes head sizes that are multiples of 16 (CPU kernel). */
export function useGroupQueryAttention(arch: DecoderArch): boolean {
  return arch.dims.headDim % 16 === 0;
}

/** cos and sin of position · inverse frequency, [maxPositions, headDim/2], in rotate-half order. */
export function rotaryCaches(arch: DecoderArch): { cos: Float32Array; sin: Float32Array } {
  const half = arch.dims.headDim / 2;
  const n = arch.maxPositions;
  const cos = new Float32Array(n * half), sin = new Float32Array(n * half);
  for (let i = 0; i < half; i++) {
    const invFreq = 1 / arch.ropeTheta ** ((2 * i) / arch.dims.headDim);
    for (let p = 0; p < n; p++) {
      const a = (p / arch.ropeLinearFactor) * invFreq;
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}
