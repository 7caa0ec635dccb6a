/**
 * Downloads through the real @huggingface/hub code path, against a local fake hub selected by the
 * endpoint (HF_ENDPOINT for the CLI): first download, cache reuse, resume after a dropped connection,
 * corrupted content, gating, 404s, 429 then success, offline mode, hostile listings, remote estimate.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint.js';
import { estimate } from '../../src/estimate/index.js';
import { estimateLocal } from '../../src/estimate/estimate.js';
import { QuantkitError } from '../../src/errors.js';
import { pull } from '../../src/hub/pull.js';
import { headerFor, writeRaw } from '../helpers/fixtures.js';
import { type FakeHub, startFakeHub } from '../helpers/fake-hub.js';
import { CLI, STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-hub-');
const TOKEN = 'hf_testtokenABCDEF0123456789';
let hub: FakeHub;
const fast = { retries: 4, backoffMs: 5 };

/** tinystories-656k split into two shards with an index, as large checkpoints are published. */
function shardedCopy(): string {
  const out = join(dir, 'sharded-src');
  mkdirSync(out, { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'README.md']) cpSync(join(TINYSTORIES656K, f), join(out, f));
  const raw = readFileSync(join(TINYSTORIES656K, 'model.safetensors'));
  const n = Number(raw.readBigUInt64LE(0));
  const header = JSON.parse(raw.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const halves = [names.slice(0, names.length >> 1), names.slice(names.length >> 1)];
  const weightMap: Record<string, string> = {};
  halves.forEach((group, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    const tensors = group.map((name) => ({ name, dtype: header[name]!.dtype, shape: header[name]!.shape, bytes: header[name]!.data_offsets[1] - header[name]!.data_offsets[0] }));
    const { header: h } = headerFor(tensors, (header as { __metadata__?: Record<string, string> }).__metadata__);
    const data = Buffer.concat(group.map((name) => raw.subarray(8 + n + header[name]!.data_offsets[0], 8 + n + header[name]!.data_offsets[1])));
    writeRaw(join(out, file), h, data);
    for (const name of group) weightMap[name] = file;
  });
  writeFileSync(join(out, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return out;
}

beforeAll(async () => {
  const big = join(dir, 'big-src');
  mkdirSync(big);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) cpSync(join(STORIES260K, f), join(big, f));
  hub = await startFakeHub({
    'org/stories260k': { dir: STORIES260K },
    'org/sharded': { dir: shardedCopy() },
    'org/gated': { dir: STORIES260K, token: TOKEN },
    'org/flaky': { dir: big, rateLimit: 3, dropAfter: { 'model.safetensors': 100_000 } },
    'org/corrupt': { dir: STORIES260K, corrupt: ['model.safetensors'] },
    'org/hostile': { dir: STORIES260K, extraEntries: ['../escape.safetensors'] },
    'org/absolute': { dir: STORIES260K, extraEntries: ['/tmp/quantkit-absolute.safetensors'] },
  });
});
afterAll(() => hub?.close());

async function failure(p: Promise<unknown>): Promise<QuantkitError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(QuantkitError);
  return e as QuantkitError;
}

const opts = (cache: string, extra: Record<string, unknown> = {}) => ({ endpoint: hub.url, cacheDir: cache, ...fast, ...extra });

describe('pull', () => {
  it('downloads the job\'s files into a cache laid out as huggingface_hub lays it out, then reuses it', async () => {
    const cache = join(dir, 'cache1');
    hub.reset();
    const r = await pull('org/stories260k', opts(cache));
    const repoDir = join(cache, 'models--org--stories260k');
    expect(r.commit).toBe(hub.commitOf('org/stories260k'));
    expect(readFileSync(join(repoDir, 'refs', 'main'), 'utf8')).toBe(r.commit);
    expect(r.snapshot).toBe(join(repoDir, 'snapshots', r.commit));
    // Only what the job needs: no README or LICENSE.
    expect(r.files.map((f) => f.path).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    const link = join(r.snapshot, 'model.safetensors');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
    expect(readFileSync(link)).toEqual(readFileSync(join(STORIES260K, 'model.safetensors')));
    expect(readlinkSync(join(r.snapshot, 'config.json'))).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{40}$/); // git oid for non-LFS files
    expect(r.downloadedBytes).toBe(r.files.reduce((s, f) => s + f.size, 0));
    const ckpt = await Checkpoint.open(r.snapshot);
    expect(ckpt.tensors.length).toBeGreaterThan(10);
    await ckpt.close();

    hub.reset();
    const again = await pull('org/stories260k', opts(cache));
    expect(again.files.every((f) => f.cached)).toBe(true);
    expect(again.downloadedBytes).toBe(0);
    expect([...hub.served.values()].reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('downloads shards with their index (listing pages followed) and honours --include/--exclude', async () => {
    const cache = join(dir, 'cache-sharded');
    const r = await pull('org/sharded', opts(cache, { include: ['README.md'], exclude: ['tokenizer.json'] }));
    const paths = r.files.map((f) => f.path).sort();
    expect(paths).toContain('model-00001-of-00002.safetensors');
    expect(paths).toContain('model-00002-of-00002.safetensors');
    expect(paths).toContain('model.safetensors.index.json');
    expect(paths).toContain('README.md');
    expect(paths).not.toContain('tokenizer.json');
    const ckpt = await Checkpoint.open(r.snapshot);
    expect(ckpt.files.length).toBe(2);
    await ckpt.close();
  });

  it('resumes a download after the connection drops mid-file, after 429s, and verifies the sha256', async () => {
    const cache = join(dir, 'cache-flaky');
    hub.reset();
    const r = await pull('org/flaky', opts(cache));
    const size = readFileSync(join(STORIES260K, 'model.safetensors')).length;
    expect(readFileSync(join(r.snapshot, 'model.safetensors'))).toEqual(readFileSync(join(STORIES260K, 'model.safetensors')));
    // The drop happened after 100,000 bytes; the resumed request asked for the rest only.
    expect(hub.requests.some((q) => q.includes('model.safetensors bytes=100000-'))).toBe(true);
    expect(hub.served.get('org/flaky/model.safetensors')).toBe(size + 1); // + the 1-byte size probe
    expect(hub.requests.filter((q) => q.startsWith('GET /org/flaky/resolve')).length).toBeGreaterThan(3);
    expect(readdirSync(join(cache, 'models--org--flaky', 'blobs')).some((n) => n.endsWith('.incomplete'))).toBe(false);
  });

  it('continues a partial file a previous run left behind', async () => {
    const cache = join(dir, 'cache-partial');
    const first = await pull('org/stories260k', opts(cache));
    const f = first.files.find((x) => x.path === 'model.safetensors')!;
    const blobs = join(cache, 'models--org--stories260k', 'blobs');
    // Turn the complete blob back into a half-downloaded one.
    const full = readFileSync(join(blobs, f.etag));
    writeFileSync(join(blobs, `${f.etag}.incomplete`), full.subarray(0, 50_000));
    spawnSync('rm', [join(blobs, f.etag)]);
    hub.reset();
    const r = await pull('org/stories260k', opts(cache));
    expect(hub.served.get('org/stories260k/model.safetensors')).toBe(full.length - 50_000 + 1);
    expect(r.downloadedBytes).toBe(full.length - 50_000);
    expect(readFileSync(join(blobs, f.etag))).toEqual(full);
  });

  it('rejects corrupted content and leaves nothing in the cache as complete', async () => {
    const cache = join(dir, 'cache-corrupt');
    const err = await failure(pull('org/corrupt', opts(cache)));
    expect(err.code).toBe('ERR_HUB_INTEGRITY');
    expect((err as Error).message).toMatch(/model\.safetensors: downloaded content does not match the hub's sha256/);
    const blobs = join(cache, 'models--org--corrupt', 'blobs');
    const sha = (await import('node:crypto')).createHash('sha256').update(readFileSync(join(STORIES260K, 'model.safetensors'))).digest('hex');
    expect(existsSync(join(blobs, sha))).toBe(false);
    expect(existsSync(join(blobs, `${sha}.incomplete`))).toBe(false);
    expect(existsSync(join(cache, 'models--org--corrupt', 'refs', 'main'))).toBe(false);
  });

  it('explains gated repositories with and without a token, and never prints the token', async () => {
    const cache = join(dir, 'cache-gated');
    const noToken = await failure(pull('org/gated', opts(cache)));
    expect(noToken.code).toBe('ERR_HUB_AUTH');
    expect(noToken.message).toMatch(/needs an access token .*accept its conditions at http:\/\/127\.0\.0\.1:\d+\/org\/gated.*HF_TOKEN/);
    const wrong = await failure(pull('org/gated', opts(cache, { token: 'hf_wrongtoken0000000000' })));
    expect(wrong.code).toBe('ERR_HUB_AUTH');
    expect(wrong.message).toMatch(/this token has no access to org\/gated: request access/);
    expect(wrong.message).not.toContain('hf_wrongtoken');
    const ok = await pull('org/gated', opts(cache, { token: TOKEN }));
    expect(ok.files.length).toBeGreaterThan(3);
  });

  it('names what is missing: repository, revision', async () => {
    const cache = join(dir, 'cache-404');
    await expect(pull('org/nothing', opts(cache))).rejects.toThrow(/repository org\/nothing not found on http:\/\/127\.0\.0\.1/);
    await expect(pull('org/stories260k', opts(cache, { revision: 'v9' }))).rejects.toThrow(/revision not found in org\/stories260k: v9/);
  });

  it('refuses listings with unsafe paths before fetching anything', async () => {
    for (const repo of ['org/hostile', 'org/absolute']) {
      const cache = join(dir, `cache-${repo.split('/')[1]}`);
      hub.reset();
      const err = await failure(pull(repo, opts(cache)));
      expect(err.code).toBe('ERR_HUB_LISTING');
      expect(err.message).toMatch(/unsafe path/);
      expect(hub.requests.some((q) => q.includes('/resolve/'))).toBe(false);
      expect(existsSync(join(cache, 'models--org--hostile', 'escape.safetensors'))).toBe(false);
      expect(existsSync(join(cache, 'escape.safetensors'))).toBe(false);
    }
    expect(existsSync('/tmp/quantkit-absolute.safetensors')).toBe(false);
  });

  it('works from the cache alone when offline, and says so when the cache lacks the model', async () => {
    const cache = join(dir, 'cache1'); // filled by the first test
    hub.reset();
    const r = await pull('org/stories260k', opts(cache, { offline: true, endpoint: 'http://127.0.0.1:9' }));
    expect(r.offline).toBe(true);
    expect(r.commit).toBe(hub.commitOf('org/stories260k'));
    expect(hub.requests.length).toBe(0);
    await expect(pull('org/sharded', opts(cache, { offline: true }))).rejects.toThrow(/not in the cache .*HF_HUB_OFFLINE/);
  });

  it('gives up on an unreachable endpoint with a clear message', async () => {
    await expect(pull('org/stories260k', { endpoint: 'http://127.0.0.1:9', cacheDir: join(dir, 'cache-down'), retries: 2, backoffMs: 1 })).rejects.toThrow(/gave up after 2 attempts \(network error/);
  });
});

describe('remote estimate', () => {
  it('reads only config.json, the index and the safetensors headers: no weight bytes', async () => {
    for (const [repo, local] of [['org/stories260k', STORIES260K], ['org/sharded', TINYSTORIES656K]] as const) {
      hub.reset();
      const remote = await estimate(repo, { scenario: 'packed', bits: 4, format: 'gguf-raw' }, { endpoint: hub.url, ...fast });
      const here = await estimateLocal(local, { scenario: 'packed', bits: 4, format: 'gguf-raw' });
      expect(remote.params).toBe(here.params);
      expect(remote.params_source).toBe('hub safetensors headers');
      // Same planner, same tensors: the GGUF tensor data is the same (its metadata names differ).
      const weights = (e: typeof remote) => Object.values(e.components).reduce((a, b) => a + b, 0);
      expect(Math.abs(weights(remote) - weights(here))).toBeLessThan(4096);
      for (const [key, bytes] of hub.served) {
        if (!key.endsWith('.safetensors')) continue;
        const raw = readFileSync(repo === 'org/stories260k' ? join(STORIES260K, 'model.safetensors') : join(dir, 'sharded-src', key.split('/').pop()!));
        expect(bytes, key).toBeLessThanOrEqual(8 + Number(raw.readBigUInt64LE(0)) + 1);
      }
    }
  });
});

describe('CLI: pull, quantize org/name, estimate org/name', () => {
  const env = (home: string, extra: Record<string, string> = {}) => ({ ...process.env, HF_HOME: home, HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: '', HF_TOKEN: '', ...extra });
  // Asynchronous: the fake hub answers from this process, so the test must not block its event loop.
  const run = (args: string[], e: NodeJS.ProcessEnv) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: e });
      let stdout = '', stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (status) => done({ status, stdout, stderr }));
    });

  it('pulls with HF_ENDPOINT/HF_HOME, prints JSON, then quantizes org/name from the cache', async () => {
    const home = join(dir, 'home-cli');
    const r = await run(['pull', 'org/stories260k', '--json'], env(home));
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.snapshot).toBe(resolve(home, 'hub', 'models--org--stories260k', 'snapshots', hub.commitOf('org/stories260k')));
    hub.reset();
    const q = await run(['quantize', 'org/stories260k', '--bits', '4', '--format', 'gguf', '--method', 'rtn', '-o', join(dir, 'cli-q4'), '-q'], env(home));
    expect(q.status, q.stderr).toBe(0);
    expect(readdirSync(join(dir, 'cli-q4'))).toContain('stories260k-Q4_0.gguf');
    expect(hub.served.get('org/stories260k/model.safetensors') ?? 0).toBe(0); // reused, not fetched again
  });

  it('reads HF_TOKEN for gated repositories and keeps it out of every output', async () => {
    const home = join(dir, 'home-gated');
    const denied = await run(['pull', 'org/gated'], env(home));
    expect(denied.status).toBe(7);
    expect(denied.stderr).toMatch(/needs an access token/);
    const wrong = await run(['pull', 'org/gated', '--json'], env(home, { HF_TOKEN: 'hf_secretwrong000000000000' }));
    expect(wrong.status).toBe(7);
    expect(wrong.stderr + wrong.stdout).not.toContain('hf_secretwrong');
    const ok = await run(['estimate', 'org/gated', '--json'], env(home, { HF_TOKEN: TOKEN }));
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout + ok.stderr).not.toContain(TOKEN);
    expect(JSON.parse(ok.stdout).params).toBe(260_032);
  });

  it('HF_HUB_OFFLINE=1 estimates from the cache, and fails clearly when the cache lacks the model', async () => {
    const home = join(dir, 'home-cli'); // filled above
    const off = env(home, { HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' });
    const e = await run(['estimate', 'org/stories260k', '--json'], off);
    expect(e.status, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).params_source).toBe('safetensors headers');
    const missing = await run(['pull', 'org/sharded'], off);
    expect(missing.status).toBe(7);
    expect(missing.stderr).toMatch(/not in the cache/);
  });
});
