/**
 * The parallelism model: for one GPU, by how much each kind of model state is divided (frozen weights,
 * trainable weights, gradients, optimizer states, kept separately so LoRA/QLoRA under FSDP or ZeRO-3
 * shards its frozen base too), and the transient buffers each strategy adds. LLMem (Kim et al., IJCAI
 * 2024) is the reference decomposition: ZeRO-3-like data parallelism = base + p16 + (p32 + os)/N + out +
 * lm, tensor parallelism adds the backward all-gather buffer. Each term below names the framework
 * behaviour it models:
 *  - ZeRO stages (Rajbhandari et al.; DeepSpeed docs): stage 1 partitions optimizer states (and the fp32
 *    master copy), stage 2 also gradients, stage 3 also parameters, frozen ones included.
 *  - PyTorch FSDP (torch.distributed.fsdp docs): FULL_SHARD shards parameters, gradients and optimizer
 *    states and reshards each unit after its forward; SHARD_GRAD_OP keeps parameters unsharded from a
 *    unit's forward to its backward; HYBRID_SHARD shards inside a group (a node) and replicates across.
 *  - Tensor parallelism divides every weight matrix (and the split activations) by t; pipeline
 *    parallelism gives each stage layers/p of the layers.
 */
import type { ParallelLayout } from './parallel.js';
import { isFsdp, zeroStage } from './parallel.js';

export interface StateDivisors {
  /** Frozen base weights (LoRA/QLoRA) and trainable weights at rest. */
  params: number;
  gradients: number;
  /** Optimizer states and the fp32 master copy. */
  optimizer: number;
  /** Model parallelism (tp·pp) divides every state. */
  model: number;
  why: { params: string; gradients: string; optimizer: string };
}

/** By how much each state shrinks on one GPU. `deepspeedZero2` keeps DeepSpeed's estimator convention (full 16-bit gradients under ZeRO-2). */
export function stateDivisors(l: ParallelLayout, deepspeedZero2 = false): StateDivisors {
  const z = zeroStage(l);
  const s = l.shardGroup;
  const model = l.tp * l.pp;
  const mp = model > 1 ? ` and by tp${l.tp}·pp${l.pp} = ${model} (each GPU holds 1/${l.tp} of every matrix of 1/${l.pp} of the layers)` : '';
  const who = isFsdp(l) ? (l.dataParallel === 'hsdp' ? `HYBRID_SHARD over a shard group of ${s} GPUs` : l.dataParallel === 'fsdp-grad-op' ? `FSDP SHARD_GRAD_OP over ${s} GPUs` : `FSDP FULL_SHARD over ${s} GPUs`) : `ZeRO-${z} over ${s} GPUs`;
  const none = l.dataParallel === 'ddp' ? `DDP replicates it on each of ${l.dp} GPUs` : 'one GPU';
  return {
    params: z >= 3 ? s : 1,
    gradients: z >= 2 && !(deepspeedZero2 && z === 2) ? s : 1,
    optimizer: z >= 1 ? s : 1,
    model,
    why: {
      params: (z >= 3 ? `divided by ${s}: ${who} shards every parameter, frozen ones included` : `whole: ${z ? `ZeRO-${z} does not partition parameters` : none}`) + mp,
      gradients: (z >= 2 && !(deepspeedZero2 && z === 2) ? `divided by ${s}: ${who} reduce-scatters gradients into shards` : `whole: ${z === 2 ? "DeepSpeed's ZeRO-2 estimator keeps full 16-bit gradients" : z ? `ZeRO-${z} keeps full gradients` : none}`) + mp,
      optimizer: (z >= 1 ? `divided by ${s}: ${who} partitions optimizer states` : `whole: ${none}`) + mp,
    },
  };
}

/** Decoder layers one pipeline stage holds. */
export const stageLayers = (layers: number, l: ParallelLayout) => Math.ceil(layers / l.pp);
