/**
 * Devices an estimate can be checked against. Capacities are the memory a program can see: NVIDIA's
 * totals as nvidia-smi reports them (MiB; the marketing "24 GB" of a 4090 is 24 GiB less reserved
 * memory), Apple's GPU working-set limit (about 75% of unified memory), and for phones the memory an app
 * may take before the OS ends it (about half of RAM on current iOS and Android devices).
 */
import { QuantkitError } from '../errors.js';

export interface Gpu {
  name: string;
  /** Bytes usable by one process. */
  bytes: number;
  note: string;
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;

export const GPUS: Gpu[] = [
  { name: 'T4', bytes: 15360 * MiB, note: 'NVIDIA T4 16 GB (nvidia-smi: 15360 MiB)' },
  { name: 'L4', bytes: 23034 * MiB, note: 'NVIDIA L4 24 GB (nvidia-smi: 23034 MiB)' },
  { name: 'RTX3090', bytes: 24576 * MiB, note: 'GeForce RTX 3090 24 GB (nvidia-smi: 24576 MiB)' },
  { name: 'RTX4090', bytes: 24564 * MiB, note: 'GeForce RTX 4090 24 GB (nvidia-smi: 24564 MiB)' },
  { name: 'A100-40', bytes: 40960 * MiB, note: 'NVIDIA A100 40 GB (nvidia-smi: 40960 MiB)' },
  { name: 'A100-80', bytes: 81920 * MiB, note: 'NVIDIA A100 80 GB (nvidia-smi: 81920 MiB)' },
  { name: 'H100-80', bytes: 81559 * MiB, note: 'NVIDIA H100 80 GB (nvidia-smi: 81559 MiB)' },
  { name: 'H200', bytes: 143771 * MiB, note: 'NVIDIA H200 141 GB (nvidia-smi: 143771 MiB)' },
  ...[8, 16, 24, 32, 64, 128, 192].map((g) => ({ name: `M-${g}`, bytes: Math.floor(g * GiB * 0.75), note: `Apple M-series with ${g} GiB unified memory (GPU working set ~75%)` })),
  ...[4, 6, 8, 12, 16].map((g) => ({ name: `phone-${g}`, bytes: Math.floor(g * GiB * 0.5), note: `phone with ${g} GiB RAM (an app may use ~50%)` })),
];

export function findGpu(name: string): Gpu {
  const key = name.toLowerCase().replace(/[\s_]/g, '').replace(/gb$/, '');
  const g = GPUS.find((x) => x.name.toLowerCase().replace(/[-_]/g, '') === key.replace(/-/g, ''));
  if (!g) throw new QuantkitError('ERR_USAGE', `unknown --gpu '${name}' (known: ${GPUS.map((x) => x.name).join(', ')})`);
  return g;
}
