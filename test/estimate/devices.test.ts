/** `--device`: whether a quantized model and its KV cache fit a phone, a Mac or a GPU, for any runtime's total. */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findDevice, fitOn } from '../../src/estimate/devices.js';
import { estimateModel } from '../../src/estimate/estimate.js';
import { fromConfig } from '../../src/estimate/model.js';
import { CONFIGS } from '../../scripts/memory-cases.js';
import { CLI, tempDir } from '../helpers/models.js';

const model = (name: string) => fromConfig(CONFIGS[name]!, `${name}/config.json`, name);
const gguf = { runtime: 'llama.cpp', dtype: 'gguf:Q4_K_M', seq: 4096, recommend: false } as const;

describe('devices', () => {
  it('checks a GGUF model with its KV cache against an iPhone, without and with the increased-memory entitlement', async () => {
    const big = await estimateModel(model('llama-3.1-8b'), { ...gguf, device: 'iphone-15-pro' });
    // llama.cpp's buffers: the Q4_K_M weights, a 4096-cell f16 KV cache (32 layers x 2 x 1024 x 2 bytes), output and compute.
    expect(big.components.kv_cache).toBe(4096 * 32 * 2 * 1024 * 2);
    expect(big.fits!.capacity_bytes).toBe(3e9);
    expect(big.fits!.fits).toBe(false);
    expect(big.fits!.raised).toMatchObject({ capacity_bytes: 6e9, fits: true });
    expect(big.fits!.headroom_bytes).toBe(3e9 - big.peak_bytes);
    const small = await estimateModel(model('llama-3.2-3b'), { ...gguf, device: 'iphone-15-pro' });
    expect(small.fits!.fits).toBe(true);
    // A shorter context is what makes the 3B model fit a 4 GB iPhone (2.1 GB budget).
    expect((await estimateModel(model('llama-3.2-3b'), { ...gguf, device: 'iphone-12-mini' })).fits!.fits).toBe(false);
    expect((await estimateModel(model('llama-3.2-3b'), { ...gguf, dtype: 'gguf:IQ2_XXS', seq: 1024, device: 'iphone-12-mini' })).fits!.fits).toBe(true);
    // What does fit is searched among llama.cpp types and contexts, never bitsandbytes formats.
    const advice = await estimateModel(model('llama-3.1-8b'), { ...gguf, recommend: true, device: 'iphone-15-pro' });
    expect(advice.cheapest_fit!.description).toMatch(/^GGUF (Q3_K_S|IQ2_XXS|Q4_K_M, context)/);
    expect(advice.cheapest_fit!.peak_bytes).toBeLessThanOrEqual(3e9);
  });

  it('gives Macs Metal\'s working set (2/3 of RAM up to 32 GB, 3/4 above) and Android phones half their RAM', async () => {
    expect(findDevice('M-16').bytes).toBe(Math.floor((16 * 2 ** 30 * 2) / 3));
    expect(findDevice('M-64').bytes).toBe(Math.floor(64 * 2 ** 30 * 0.75));
    expect(findDevice('macbook-pro-m3-max-36').bytes).toBe(Math.floor(36 * 2 ** 30 * 0.75));
    expect(findDevice('pixel-8-pro').bytes).toBe(6e9);
    expect(findDevice('Pixel 8 Pro').name).toBe('pixel-8-pro');
    const mac = await estimateModel(model('llama-3.1-70b'), { ...gguf, device: 'M-64' });
    expect(mac.fits!.fits).toBe(true);
    expect((await estimateModel(model('llama-3.1-70b'), { ...gguf, device: 'M-32' })).fits!.fits).toBe(false);
  });

  it('checks any runtime\'s total the same way', () => {
    const d = findDevice('iphone-13-pro');
    expect(fitOn(4e9, d)).toMatchObject({ fits: false, headroom_bytes: 3.12e9 - 4e9, raised: { fits: true, capacity_bytes: 4.2e9 } });
    expect(fitOn(3e9, findDevice('A100-80'))).toMatchObject({ fits: true, kind: 'gpu' });
    expect(() => findDevice('Nokia 3310')).toThrow(/unknown device 'Nokia 3310' \(known: T4, /);
  });

  it('prints both verdicts on the command line, and still takes --gpu', () => {
    const dir = tempDir();
    const cfg = join(dir, 'llama-8b.json');
    writeFileSync(cfg, JSON.stringify(CONFIGS['llama-3.1-8b']));
    const r = spawnSync(process.execPath, [CLI, 'estimate', cfg, '--runtime', 'llama.cpp', '--dtype', 'gguf:Q4_K_M', '--seq', '4096', '--device', 'iphone-15-pro'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/does NOT fit on iphone-15-pro \(iPhone 15 Pro \(8 GB\).*budget 3\.00 GB \(2\.79 GiB\)\)/);
    expect(r.stdout).toMatch(/with the com\.apple\.developer\.kernel\.increased-memory-limit entitlement: budget 6\.00 GB \(5\.59 GiB\), fits/);
    const g = spawnSync(process.execPath, [CLI, 'estimate', cfg, '--dtype', 'nf4', '--gpu', 'T4'], { encoding: 'utf8' });
    expect(g.status, g.stderr).toBe(0);
    expect(g.stdout).toMatch(/fits on T4 \(NVIDIA T4/);
  });
});
