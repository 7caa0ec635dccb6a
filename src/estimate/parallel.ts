/**
 * Distributed layouts: `ddp`, DeepSpeed `zero1`/`zero2`/`zero3`, PyTorch FSDP `fsdp` (FULL_SHARD),
 * `fsdp-grad-op` (SHARD_GRAD_OP) and `hsdpN` (HYBRID_SHARD: full shard inside groups of N GPUs,
 * replicated across groups), `tpN`, `ppN`, `dpN`, and combinations joined by `+` (`tp2+dp4`,
 * `tp2+pp2+zero1`, `tp8+fsdp`). Degrees not given are filled from --gpus: the data-parallel degree is
 * what tensor and pipeline parallelism leave over.
 */
import { QuantkitError } from '../errors.js';

export type DataParallel = 'none' | 'ddp' | 'zero1' | 'zero2' | 'zero3' | 'fsdp' | 'fsdp-grad-op' | 'hsdp';

export interface ParallelLayout {
  dataParallel: DataParallel;
  dp: number;
  tp: number;
  pp: number;
  gpus: number;
  /** GPUs one copy of the sharded states is spread over: dp, or HSDP's shard group. */
  shardGroup: number;
  /** Canonical spelling, e.g. `tp2+pp2+zero1(dp2)`. */
  label: string;
}

/** PyTorch FSDP in any of its sharding strategies (as opposed to DeepSpeed ZeRO). */
export const isFsdp = (l: ParallelLayout) => l.dataParallel === 'fsdp' || l.dataParallel === 'fsdp-grad-op' || l.dataParallel === 'hsdp';
/** The ZeRO stage whose sharding a layout applies (FSDP FULL_SHARD/HYBRID shard like stage 3, SHARD_GRAD_OP like 2 plus sharded parameters at rest). */
export function zeroStage(l: ParallelLayout): 0 | 1 | 2 | 3 {
  switch (l.dataParallel) {
    case 'zero1': return 1;
    case 'zero2': return 2;
    case 'zero3': case 'fsdp': case 'fsdp-grad-op': case 'hsdp': return 3;
    default: return 0;
  }
}

export function parseParallel(spec: string | undefined, gpus: number): ParallelLayout {
  const usage = (m: string) => new QuantkitError('ERR_USAGE', m);
  if (!Number.isSafeInteger(gpus) || gpus < 1) throw usage(`--gpus must be a positive integer (got ${gpus})`);
  let dataParallel: DataParallel = 'none';
  let dp: number | undefined, tp = 1, pp = 1, group: number | undefined;
  for (const raw of (spec ?? '').split('+').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    const m = /^(ddp|dp|zero1|zero2|zero3|fsdp-grad-op|shard-grad-op|fsdp|hsdp|tp|pp)(\d+)?$/.exec(raw);
    if (!m) throw usage(`--parallel: unknown part '${raw}' (use ddp, zero1, zero2, zero3, fsdp, fsdp-grad-op, hsdpN, tpN, ppN, dpN, joined by +)`);
    const n = m[2] === undefined ? undefined : Number(m[2]);
    if (n !== undefined && n < 1) throw usage(`--parallel: degree of '${raw}' must be at least 1`);
    switch (m[1]) {
      case 'tp': tp = n ?? gpus; break;
      case 'pp': pp = n ?? gpus; break;
      default: {
        const kind: DataParallel = m[1] === 'dp' ? 'ddp' : m[1] === 'shard-grad-op' ? 'fsdp-grad-op' : (m[1] as DataParallel);
        if (dataParallel !== 'none' && dataParallel !== kind) throw usage(`--parallel: choose one data-parallel method (got ${dataParallel} and ${kind})`);
        dataParallel = kind;
        // hsdpN names the shard group (GPUs per node); every other degree is the data-parallel degree.
        if (kind === 'hsdp') group = n;
        else dp = n;
      }
    }
  }
  const rest = gpus / (tp * pp);
  if (!Number.isInteger(rest)) throw usage(`--parallel: tp${tp} x pp${pp} does not divide --gpus ${gpus}`);
  if (dp === undefined) dp = rest;
  if (dp * tp * pp !== gpus) throw usage(`--parallel: tp${tp} x pp${pp} x dp${dp} = ${dp * tp * pp} GPUs, but --gpus is ${gpus}`);
  if (dp > 1 && dataParallel === 'none') dataParallel = 'ddp';
  let shardGroup = dataParallel === 'ddp' || dataParallel === 'none' ? 1 : dp;
  if (dataParallel === 'hsdp') {
    shardGroup = group ?? Math.min(8, dp);
    if (dp % shardGroup !== 0) throw usage(`--parallel: hsdp${shardGroup} does not divide the data-parallel degree ${dp}`);
  }
  const dpLabel = dataParallel === 'hsdp' ? `hsdp(dp${dp}, shard ${shardGroup})` : `${dataParallel}(dp${dp})`;
  const parts = [tp > 1 ? `tp${tp}` : '', pp > 1 ? `pp${pp}` : '', dataParallel !== 'none' ? dpLabel : ''].filter(Boolean);
  return { dataParallel, dp, tp, pp, gpus, shardGroup, label: parts.join('+') || 'single GPU' };
}
