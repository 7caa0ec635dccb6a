/**
 * `pull`: downloads what a quantization job needs from a hub repository into the shared cache.
 *
 * - The revision is resolved to a commit first; the snapshot is named by it and refs/<revision> records it.
 * - Every path in the listing is checked before anything is fetched (no `..`, no absolute path).
 * - A file already complete in blobs/ is never fetched again. A download goes to blobs/<hash>.incomplete
 *   and continues from its length with a Range request after a dropped connection (or in a later run).
 * - LFS files must match the hub's sha256 and other files their git blob sha1 before they are renamed
 *   into blobs/; a mismatch deletes the partial file and fails the run.
 * - `HF_HUB_OFFLINE=1` (or `offline`) uses the cache only.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, truncate, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ListFileEntry } from '@huggingface/hub';
import { globToRegExp } from '../plan.js';
import type { Progress } from '../run-control.js';
import { QuantkitError, ioError } from '../errors.js';
import { RepoCache, checkRepoPath, hubCacheDir, isCommitHash } from './cache.js';
import { type HubContext, type HubOptions, hubContext, scrub } from './client.js';

/** What a quantization job reads: weights, their index, config and tokenizer files. */
export const DEFAULT_INCLUDE = [
  '*.safetensors', '*.safetensors.index.json', 'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json',
  'tokenizer.model', 'special_tokens_map.json', 'added_tokens.json', 'vocab.json', 'merges.txt', 'chat_template.json', 'chat_template.jinja',
  '*/config.json', '*/model_index.json', 'model_index.json', 'scheduler/*',
];

/** Download progress: the run-wide Progress with phase 'download' and `tensor` naming the file. */
export type DownloadProgress = Progress;

export interface PullOptions extends HubOptions {
  revision?: string;
  /** Extra globs to download (`*` matches any run of characters, `/` included). */
  include?: string[];
  /** Globs never to download (applied after include). */
  exclude?: string[];
  /** Cache directory (default: HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Files downloaded at once (default 4). */
  concurrency?: number;
  /** Cache only (default: HF_HUB_OFFLINE=1). */
  offline?: boolean;
  onProgress?: (p: DownloadProgress) => void;
}

export interface PulledFile {
  path: string;
  size: number;
  /** Blob name: LFS sha256 or git blob sha1. */
  etag: string;
  /** True when the cache already held it (nothing fetched). */
  cached: boolean;
}

export interface PullResult {
  repo: string;
  revision: string;
  commit: string;
  /** The snapshot directory: a model directory quantize and estimate open directly. */
  snapshot: string;
  files: PulledFile[];
  /** Bytes fetched over the network in this run. */
  downloadedBytes: number;
  offline: boolean;
}

export function isOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase());
}

function selector(include: string[] | undefined, exclude: string[] | undefined): (path: string) => boolean {
  const inc = [...DEFAULT_INCLUDE, ...(include ?? [])].map(globToRegExp);
  const exc = (exclude ?? []).map(globToRegExp);
  return (p) => inc.some((r) => r.test(p)) && !exc.some((r) => r.test(p));
}

export async function pull(repo: string, o: PullOptions = {}): Promise<PullResult> {
  const revision = o.revision ?? 'main';
  const cache = new RepoCache(repo, o.cacheDir ?? hubCacheDir());
  const wanted = selector(o.include, o.exclude);
  if (o.offline ?? isOffline()) return pullOffline(repo, revision, cache, wanted);

  const ctx = hubContext(repo, o);
  try {
    const { listFiles } = await hubLibrary();
    const lib = { hubUrl: ctx.endpoint, fetch: ctx.fetch, ...(ctx.token ? { accessToken: ctx.token } : {}) };
    const commit = await resolveCommit(ctx, revision);
    const entries: ListFileEntry[] = [];
    for await (const e of listFiles({ repo, revision: commit, recursive: true, ...lib })) if (e.type === 'file') entries.push(e);
    for (const e of entries) checkRepoPath(e.path, repo); // the whole listing, before anything is fetched
    const selected = entries.filter((e) => wanted(e.path));
    if (!selected.some((e) => e.path.endsWith('.safetensors')))
      throw new QuantkitError('ERR_HUB_NOT_FOUND', `no .safetensors files at ${revision} (${entries.length} files listed); quantkit reads safetensors checkpoints only`, { file: repo });

    const bytesTotal = selected.reduce((s, e) => s + (e.lfs?.size ?? e.size), 0);
    let bytesDone = 0;
    let done = 0;
    let downloaded = 0;
    const report = (path: string) => o.onProgress?.({ phase: 'download', tensor: path, done, total: selected.length, bytesDone, bytesTotal });
    const files: PulledFile[] = new Array(selected.length);
    let next = 0;
    const worker = async () => {
      while (next < selected.length) {
        const i = next++;
        const e = selected[i]!;
        const f = await ensureFile(ctx, cache, commit, e, (n) => {
          bytesDone += n;
          downloaded += n;
          report(e.path);
        });
        if (f.cached) bytesDone += f.size;
        done++;
        report(e.path);
        files[i] = f;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 4, selected.length)) }, worker));
    await cache.writeRef(revision, commit);
    return { repo, revision, commit, snapshot: cache.snapshotDir(commit), files, downloadedBytes: downloaded, offline: false };
  } catch (e) {
    throw scrub(e, ctx.token);
  }
}

/** The hub library, loaded when a hub id is used (commands on local files never pay for it). */
type HubLibrary = Pick<typeof import('@huggingface/hub'), 'downloadFile' | 'listFiles' | 'modelInfo'>;
export const hubLibrary = (): Promise<HubLibrary> => import('@huggingface/hub');

export async function resolveCommit(ctx: HubContext, revision: string): Promise<string> {
  const { modelInfo } = await hubLibrary();
  const info = await modelInfo({ name: ctx.repo, revision, additionalFields: ['sha'], hubUrl: ctx.endpoint, fetch: ctx.fetch, ...(ctx.token ? { accessToken: ctx.token } : {}) });
  const sha = (info as { sha?: unknown }).sha;
  if (typeof sha !== 'string' || !isCommitHash(sha)) throw new QuantkitError('ERR_HUB_NETWORK', `the hub did not give a commit for revision ${revision}`, { file: ctx.repo });
  return sha;
}

const MAX_RESUMES = 5;

async function ensureFile(ctx: HubContext, cache: RepoCache, commit: string, e: ListFileEntry, onBytes: (n: number) => void): Promise<PulledFile> {
  const size = e.lfs?.size ?? e.size;
  const etag = e.lfs?.oid ?? e.oid;
  if (!etag) throw new QuantkitError('ERR_HUB_LISTING', `the listing gives no hash for ${e.path}`, { file: ctx.repo });
  const blob = cache.blobPath(etag);
  if ((await cache.blobSize(etag)) === size) {
    await cache.link(commit, e.path, etag);
    return { path: e.path, size, etag, cached: true };
  }
  await mkdir(dirname(blob), { recursive: true });
  const partial = `${blob}.incomplete`;
  const { downloadFile } = await hubLibrary();
  const remote = await downloadFile({ repo: ctx.repo, path: e.path, revision: commit, hubUrl: ctx.endpoint, fetch: ctx.fetch, xet: false, ...(ctx.token ? { accessToken: ctx.token } : {}) });
  if (!remote) throw new QuantkitError('ERR_HUB_NOT_FOUND', `file not found: ${e.path}`, { file: ctx.repo });
  if (remote.size !== size) throw new QuantkitError('ERR_HUB_INTEGRITY', `${e.path}: the hub serves ${remote.size} bytes but lists ${size}`, { file: ctx.repo });

  for (let attempt = 1; ; attempt++) {
    let have = (await stat(partial).catch(() => null))?.size ?? 0;
    if (have > size) {
      await truncate(partial, 0);
      have = 0;
    }
    if (have < size) {
      try {
        await append(partial, remote.slice(have).stream(), ctx.signal, onBytes);
      } catch (err) {
        if (ctx.signal?.aborted || attempt >= MAX_RESUMES) {
          if (err instanceof QuantkitError) throw err;
          throw new QuantkitError('ERR_HUB_NETWORK', `${e.path}: download interrupted ${attempt} times (${(err as Error).message}); run again to resume from ${((await stat(partial).catch(() => null))?.size ?? 0)} bytes`, { file: ctx.repo });
        }
        await sleep(Math.min(4000, 250 * 2 ** (attempt - 1)));
        continue;
      }
    }
    break;
  }
  const got = (await stat(partial)).size;
  const ok = got === size && (await digestOf(partial, e.lfs ? 'sha256' : 'git-sha1', size)) === etag;
  if (!ok) {
    await unlink(partial).catch(() => undefined);
    throw new QuantkitError('ERR_HUB_INTEGRITY', `${e.path}: downloaded content does not match the hub's ${e.lfs ? 'sha256' : 'git hash'} ${etag} (${got} of ${size} bytes); the partial file was deleted`, { file: ctx.repo });
  }
  await rename(partial, blob).catch((err) => {
    throw ioError('ERR_IO', blob, err, 'cannot move the verified download into the cache');
  });
  await cache.link(commit, e.path, etag);
  return { path: e.path, size, etag, cached: false };
}

/** Appends a stream to a file, flushing to disk before returning so a resumed length is a real length. */
async function append(path: string, body: ReadableStream<Uint8Array>, signal: AbortSignal | undefined, onBytes: (n: number) => void): Promise<void> {
  const fh = await open(path, 'a');
  try {
    const reader = body.getReader();
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      if (value.length) {
        await fh.write(value);
        onBytes(value.length);
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** sha256 of the file (LFS oid), or git's blob sha1 (`blob <size>\0` + content) for regular files. */
async function digestOf(path: string, kind: 'sha256' | 'git-sha1', size: number): Promise<string> {
  const h: Hash = createHash(kind === 'sha256' ? 'sha256' : 'sha1');
  if (kind === 'git-sha1') h.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Cache only: the revision's recorded commit and the files its snapshot holds. */
async function pullOffline(repo: string, revision: string, cache: RepoCache, wanted: (p: string) => boolean): Promise<PullResult> {
  const commit = await cache.readRef(revision);
  const snapshot = commit ? cache.snapshotDir(commit) : null;
  const paths = snapshot ? await listSnapshot(snapshot) : [];
  const files: PulledFile[] = [];
  for (const p of paths.filter(wanted)) {
    const st = await stat(join(snapshot!, p)).catch(() => null);
    if (st) files.push({ path: p, size: st.size, etag: '', cached: true });
  }
  if (!commit || !files.some((f) => f.path.endsWith('.safetensors')))
    throw new QuantkitError('ERR_HUB_OFFLINE', `${repo}@${revision} is not in the cache at ${cache.dir} and HF_HUB_OFFLINE is set: run once online (quantkit pull ${repo}) or unset HF_HUB_OFFLINE`, { file: repo });
  return { repo, revision, commit, snapshot: snapshot!, files, downloadedBytes: 0, offline: true };
}

async function listSnapshot(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await listSnapshot(p, base)));
    else out.push(relative(base, p).split(sep).join('/'));
  }
  return out;
}
