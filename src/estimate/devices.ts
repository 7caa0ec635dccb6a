/**
 * Devices an estimate can be checked against, with the memory one process may actually use:
 *  - NVIDIA GPUs: the total nvidia-smi reports (MiB; a 4090's "24 GB" is 24 GiB less reserved memory);
 *  - Apple-silicon Macs: Metal's recommendedMaxWorkingSetSize, the GPU's share of unified memory. It is
 *    2/3 of RAM on a 32 GB M1 Max (21,845 MiB, llama.cpp#2011) and about 3/4 on 64 GB machines (~48 GB,
 *    llama.cpp#1870); Metal follows `sysctl iogpu.wired_limit_mb` when it is raised (llmfit#754);
 *  - iPhones and iPads: the jetsam limit of a foreground app, as os_proc_available_memory() reports it at
 *    launch, without and with the com.apple.developer.kernel.increased-memory-limit entitlement (figures
 *    measured by app developers, cited per device; Apple documents the entitlement but no numbers);
 *  - Android phones: no per-app native limit, but the low-memory killer ends apps when free memory runs
 *    out (pytorch/executorch#5582 on a Pixel 8); half of RAM is the usual safe budget (termux#1789).
 * The check takes any runtime's total (llama.cpp's buffers for a GGUF file, ONNX Runtime's, PyTorch's
 * peak), so every output format is checked the same way.
 */
import { QuantkitError } from '../errors.js';

export type DeviceKind = 'gpu' | 'laptop' | 'phone' | 'tablet';

export interface Device {
  name: string;
  kind: DeviceKind;
  /** Bytes one process may use: the budget the fit is checked against. */
  bytes: number;
  /** Physical memory, where it differs from the budget. */
  ram?: number;
  note: string;
  source?: string;
  /** A larger budget available under a condition the app controls (an entitlement, a sysctl). */
  raised?: { bytes: number; how: string; source: string };
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const GB = 1e9;

/** Metal's recommendedMaxWorkingSetSize: 2/3 of unified memory up to 32 GiB, 3/4 above (sources above). */
const appleGpuShare = (ramGiB: number) => (ramGiB <= 32 ? 2 / 3 : 3 / 4);
const mac = (name: string, ramGiB: number, what: string): Device => ({
  name,
  kind: 'laptop',
  bytes: Math.floor(ramGiB * GiB * appleGpuShare(ramGiB)),
  ram: ramGiB * GiB,
  note: `${what} with ${ramGiB} GB unified memory: Metal's recommended GPU working set, ${appleGpuShare(ramGiB) === 3 / 4 ? '3/4' : '2/3'} of RAM`,
  source: 'llama.cpp#2011 (32 GB M1 Max: 21845 MiB), llama.cpp#1870 (64 GB M2 Max: ~48 GB)',
});
const iphone = (name: string, ram: number, budget: number, raised: number, what: string, source: string): Device => ({
  name,
  kind: name.startsWith('ipad') ? 'tablet' : 'phone',
  bytes: budget,
  ram,
  note: `${what}: about ${(budget / GB).toFixed(1)} GB for one foreground app (jetsam limit)`,
  source,
  raised: { bytes: raised, how: 'with the com.apple.developer.kernel.increased-memory-limit entitlement', source },
});
const android = (name: string, ramGB: number, what: string): Device => ({
  name,
  kind: 'phone',
  bytes: Math.floor((ramGB * GB) / 2),
  ram: ramGB * GB,
  note: `${what} with ${ramGB} GB RAM: half of RAM before the low-memory killer ends the app`,
  source: 'termux/termux-app#1789 (no more than 50% is safe), pytorch/executorch#5582 (lmkd on a Pixel 8)',
});

export const DEVICES: Device[] = [
  { name: 'T4', kind: 'gpu', bytes: 15360 * MiB, note: 'NVIDIA T4 16 GB (nvidia-smi: 15360 MiB)' },
  { name: 'L4', kind: 'gpu', bytes: 23034 * MiB, note: 'NVIDIA L4 24 GB (nvidia-smi: 23034 MiB)' },
  { name: 'RTX3090', kind: 'gpu', bytes: 24576 * MiB, note: 'GeForce RTX 3090 24 GB (nvidia-smi: 24576 MiB)' },
  { name: 'RTX4090', kind: 'gpu', bytes: 24564 * MiB, note: 'GeForce RTX 4090 24 GB (nvidia-smi: 24564 MiB)' },
  { name: 'A10G', kind: 'gpu', bytes: 23028 * MiB, note: 'NVIDIA A10G 24 GB (nvidia-smi: 23028 MiB)' },
  { name: 'A100-40', kind: 'gpu', bytes: 40960 * MiB, note: 'NVIDIA A100 40 GB (nvidia-smi: 40960 MiB)' },
  { name: 'A100-80', kind: 'gpu', bytes: 81920 * MiB, note: 'NVIDIA A100 80 GB (nvidia-smi: 81920 MiB)' },
  { name: 'H100-80', kind: 'gpu', bytes: 81559 * MiB, note: 'NVIDIA H100 80 GB (nvidia-smi: 81559 MiB)' },
  { name: 'H200', kind: 'gpu', bytes: 143771 * MiB, note: 'NVIDIA H200 141 GB (nvidia-smi: 143771 MiB)' },
  ...[8, 16, 24, 32, 36, 48, 64, 96, 128, 192].map((g) => mac(`M-${g}`, g, 'Apple-silicon Mac')),
  mac('macbook-air-m2-8', 8, 'MacBook Air M2'),
  mac('macbook-air-m3-16', 16, 'MacBook Air M3'),
  mac('macbook-pro-m3-pro-18', 18, 'MacBook Pro M3 Pro'),
  mac('macbook-pro-m3-max-36', 36, 'MacBook Pro M3 Max'),
  mac('macbook-pro-m4-max-128', 128, 'MacBook Pro M4 Max'),
  iphone('iphone-12-mini', 4 * GB, 2.1 * GB, 2.4 * GB, 'iPhone 12 mini (4 GB)', 'allenai/OLMoE.swift#38: 2.1 GB, 2.4 GB with the entitlement'),
  iphone('iphone-13-pro', 6 * GB, 3.12 * GB, 4.2 * GB, 'iPhone 13 Pro (6 GB)', 'a-ghorbani/pocketpal-ai#651: os_proc_available_memory 3.12 GB at launch, 4.20 GB with the entitlement'),
  iphone('iphone-15-pro', 8 * GB, 3 * GB, 6 * GB, 'iPhone 15 Pro (8 GB)', 'introlab/rtabmap#1446: 3 GB, 6 GB with the entitlement'),
  iphone('ipad-pro-m1-8', 8 * GB, 5 * GB, 6 * GB, 'iPad Pro M1 (8 GB)', 'utmapp/UTM#3982 (Artstudio Pro measurements): ~5 GB before iPadOS 15, up to 6 GB with the entitlement'),
  iphone('ipad-pro-m1-16', 16 * GB, 5 * GB, 12 * GB, 'iPad Pro M1 (16 GB)', 'utmapp/UTM#3982 (Artstudio Pro measurements): up to 12 GB with the entitlement'),
  android('pixel-8', 8, 'Google Pixel 8'),
  android('pixel-8-pro', 12, 'Google Pixel 8 Pro'),
  android('pixel-9-pro', 16, 'Google Pixel 9 Pro'),
  android('galaxy-s24-ultra', 12, 'Samsung Galaxy S24 Ultra'),
  ...[4, 6, 8, 12, 16].map((g) => ({ ...android(`phone-${g}`, g, 'an Android phone'), note: `phone with ${g} GB RAM: half of RAM (Android's safe budget; iPhones get less, see iphone-*)` })),
];

const key = (s: string) => s.toLowerCase().replace(/[\s_-]/g, '').replace(/gb$/, '');

export function findDevice(name: string): Device {
  const d = DEVICES.find((x) => key(x.name) === key(name));
  if (!d) throw new QuantkitError('ERR_USAGE', `unknown device '${name}' (known: ${DEVICES.map((x) => x.name).join(', ')})`);
  return d;
}

export interface DeviceFit {
  device: string;
  kind: DeviceKind;
  capacity_bytes: number;
  fits: boolean;
  headroom_bytes: number;
  note: string;
  source?: string;
  /** The verdict with the raised budget (iOS entitlement), where the device has one. */
  raised?: { how: string; capacity_bytes: number; fits: boolean; headroom_bytes: number };
}

/** Whether a total (any runtime's) fits a device's budget, and its raised budget. */
export function fitOn(bytes: number, d: Device): DeviceFit {
  return {
    device: d.name,
    kind: d.kind,
    capacity_bytes: d.bytes,
    fits: bytes <= d.bytes,
    headroom_bytes: d.bytes - bytes,
    note: d.note,
    ...(d.source ? { source: d.source } : {}),
    ...(d.raised ? { raised: { how: d.raised.how, capacity_bytes: d.raised.bytes, fits: bytes <= d.raised.bytes, headroom_bytes: d.raised.bytes - bytes } } : {}),
  };
}
