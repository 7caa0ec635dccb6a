/**
 * How a model's parameters group into the units distributed training moves around: decoder layers (the
 * FSDP unit of every auto-wrap policy by layer class, the PP stage's building block) and the rest
 * (embeddings, output head, final norm: the FSDP root). Sizes in any weight format come from pricing a
 * unit's own tensors with weightBytes, so a gathered NF4 layer is priced as NF4.
 */
import { Checkpoint, type CheckpointTensor } from '../checkpoint.js';
import { shapeElements } from '../safetensors/dtypes.js';
import { type EstimateModel, fromCheckpoint } from './model.js';
import { type WeightFormat, tensorRole, weightBytes } from './weights.js';

export interface ModelUnits {
  /** Decoder layers found by name (0 for a model known only by its parameter count). */
  layers: number;
  /** The largest layer's parameters and tensors. */
  layerParams: number;
  layerTensors: CheckpointTensor[];
  /** Parameters and tensors outside every layer. */
  rootParams: number;
  rootTensors: CheckpointTensor[];
  /** Parameters that bitsandbytes leaves unquantized (embeddings, head, norms, biases). */
  unquantizedParams: number;
  /** The largest 2-D linear weight (the dequantization scratch is sized by it). */
  largestLinearParams: number;
}

const LAYER = /\.(?:layers|h|layer|blocks)\.(\d+)\./;

export function modelUnits(model: EstimateModel): ModelUnits {
  const byLayer = new Map<number, CheckpointTensor[]>();
  const root: CheckpointTensor[] = [];
  let unquantized = 0;
  let largestLinear = 0;
  for (const t of model.checkpoint.tensors) {
    const n = shapeElements(t.shape) ?? 0;
    const role = tensorRole(t);
    if (role === 'linear') largestLinear = Math.max(largestLinear, n);
    else unquantized += n;
    const m = LAYER.exec(t.name);
    if (m) {
      const i = Number(m[1]);
      const list = byLayer.get(i) ?? [];
      list.push(t);
      byLayer.set(i, list);
    } else root.push(t);
  }
  const count = (ts: CheckpointTensor[]) => ts.reduce((s, t) => s + (shapeElements(t.shape) ?? 0), 0);
  let layerTensors: CheckpointTensor[] = [];
  let layerParams = 0;
  for (const ts of byLayer.values()) {
    const n = count(ts);
    if (n > layerParams) [layerParams, layerTensors] = [n, ts];
  }
  // Without named layers the largest tensor stands for the unit gathered at a time.
  if (byLayer.size === 0) layerParams = model.largestTensorParams;
  return { layers: byLayer.size, layerParams, layerTensors, rootParams: count(root), rootTensors: root, unquantizedParams: unquantized, largestLinearParams: largestLinear };
}

/** Bytes of a subset of a model's tensors in a weight format (a gathered unit, the FSDP root). */
export async function tensorsBytes(model: EstimateModel, tensors: CheckpointTensor[], format: WeightFormat): Promise<number> {
  if (tensors.length === 0) return 0;
  const sub = fromCheckpoint(Checkpoint.fromShapes(`${model.name} (part)`, null, tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.bytes }))), model.paramsSource, model.name);
  return (await weightBytes(sub, format)).total;
}
