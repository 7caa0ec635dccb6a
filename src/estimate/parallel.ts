/**
 * Distributed layouts: `ddp`, `zero1`, `zero2`, `zero3` (= `fsdp`), `tpN`, `ppN`, `dpN` and combinations
 * joined by `+` (`tp2+dp4`, `tp2+pp2+zero1`). Degrees not given are filled from --gpus: the data-parallel
 * degree is what tensor and pipeline parallelism leave over.
 */
import { QuantkitError } from '../errors.js';

export type DataParallel = 'none' | 'ddp' | 'zero1' | 'zero2' | 'zero3';

export interface ParallelLayout {
  dataParallel: DataParallel;
  dp: number;
  tp: number;
  pp: number;
  gpus: number;
  /** Canonical spelling, e.g. `tp2+pp2+zero1(dp2)`. */
  label: string;
}

export function parseParallel(spec: string | undefined, gpus: number): ParallelLayout {
  const usage = (m: string) => new QuantkitError('ERR_USAGE', m);
  if (!Number.isSafeInteger(gpus) || gpus < 1) throw usage(`--gpus must be a positive integer (got ${gpus})`);
  let dataParallel: DataParallel = 'none';
  let dp: number | undefined, tp = 1, pp = 1;
  for (const raw of (spec ?? '').split('+').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    const m = /^(ddp|dp|zero1|zero2|zero3|fsdp|tp|pp)(\d+)?$/.exec(raw);
    if (!m) throw usage(`--parallel: unknown part '${raw}' (use ddp, zero1, zero2, zero3, fsdp, tpN, ppN, dpN, joined by +)`);
    const n = m[2] === undefined ? undefined : Number(m[2]);
    if (n !== undefined && n < 1) throw usage(`--parallel: degree of '${raw}' must be at least 1`);
    switch (m[1]) {
      case 'tp': tp = n ?? gpus; break;
      case 'pp': pp = n ?? gpus; break;
      default: {
        const kind: DataParallel = m[1] === 'dp' ? 'ddp' : m[1] === 'fsdp' ? 'zero3' : (m[1] as DataParallel);
        if (dataParallel !== 'none' && dataParallel !== kind) throw usage(`--parallel: choose one data-parallel method (got ${dataParallel} and ${kind})`);
        dataParallel = kind;
        dp = n;
      }
    }
  }
  const rest = gpus / (tp * pp);
  if (!Number.isInteger(rest)) throw usage(`--parallel: tp${tp} x pp${pp} does not divide --gpus ${gpus}`);
  if (dp === undefined) dp = rest;
  if (dp * tp * pp !== gpus) throw usage(`--parallel: tp${tp} x pp${pp} x dp${dp} = ${dp * tp * pp} GPUs, but --gpus is ${gpus}`);
  if (dp > 1 && dataParallel === 'none') dataParallel = 'ddp';
  const parts = [tp > 1 ? `tp${tp}` : '', pp > 1 ? `pp${pp}` : '', dataParallel !== 'none' ? `${dataParallel}(dp${dp})` : ''].filter(Boolean);
  return { dataParallel, dp, tp, pp, gpus, label: parts.join('+') || 'single GPU' };
}
