/**
 * A hub repository known by its headers: config.json, the shard index and each safetensors header,
 * fetched with Range requests (8 bytes of length, then the header itself). No weight byte is
 * transferred. The headers get the same validation as local files (the listing gives each file's size).
 */
import type { ListFileEntry } from '@huggingface/hub';
import { Checkpoint, type ModelConfig, tiedAliases } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import { type EstimateModel, fromCheckpoint } from '../estimate/model.js';
import { checkHeaderLength, parseHeader } from '../safetensors/header.js';
import { isJsonObject, parseStrictJson } from '../safetensors/strict-json.js';
import { checkRepoPath } from './cache.js';
import { type HubContext, type HubOptions, hubContext, scrub } from './client.js';
import { hubLibrary, resolveCommit } from './pull.js';

async function fetchBlob(ctx: HubContext, commit: string, path: string) {
  const { downloadFile } = await hubLibrary();
  const blob = await downloadFile({ repo: ctx.repo, path, revision: commit, hubUrl: ctx.endpoint, fetch: ctx.fetch, xet: false, ...(ctx.token ? { accessToken: ctx.token } : {}) });
  if (!blob) throw new QuantkitError('ERR_HUB_NOT_FOUND', `file not found: ${path}`, { file: ctx.repo });
  return blob;
}

async function fetchJson(ctx: HubContext, commit: string, path: string): Promise<Record<string, unknown>> {
  const text = await (await fetchBlob(ctx, commit, path)).text();
  let v: unknown;
  try {
    v = parseStrictJson(text);
  } catch (e) {
    throw new QuantkitError('ERR_CHECKPOINT', `not valid JSON: ${(e as Error).message}`, { file: `${ctx.repo}/${path}` });
  }
  if (!isJsonObject(v as never)) throw new QuantkitError('ERR_CHECKPOINT', 'not a JSON object', { file: `${ctx.repo}/${path}` });
  return v as Record<string, unknown>;
}

export async function openRemoteModel(repo: string, o: HubOptions & { revision?: string } = {}): Promise<EstimateModel> {
  const ctx = hubContext(repo, o);
  try {
    const commit = await resolveCommit(ctx, o.revision ?? 'main');
    const { listFiles } = await hubLibrary();
    const files = new Map<string, ListFileEntry>();
    for await (const e of listFiles({ repo, revision: commit, recursive: false, hubUrl: ctx.endpoint, fetch: ctx.fetch, ...(ctx.token ? { accessToken: ctx.token } : {}) }))
      if (e.type === 'file') files.set(checkRepoPath(e.path, repo), e);
    const config = files.has('config.json') ? ((await fetchJson(ctx, commit, 'config.json')) as ModelConfig) : null;
    let shards: string[];
    if (files.has('model.safetensors.index.json')) {
      const wm = (await fetchJson(ctx, commit, 'model.safetensors.index.json')).weight_map;
      if (!isJsonObject(wm as never)) throw new QuantkitError('ERR_CHECKPOINT', 'has no weight_map object', { file: `${repo}/model.safetensors.index.json` });
      shards = [...new Set(Object.values(wm as Record<string, unknown>).map((s) => checkRepoPath(String(s), repo)))];
    } else if (files.has('model.safetensors')) shards = ['model.safetensors'];
    else throw new QuantkitError('ERR_HUB_NOT_FOUND', 'no model.safetensors or model.safetensors.index.json at the repository root', { file: repo });

    const tensors: { name: string; dtype: never; shape: number[]; bytes: number; file: string }[] = [];
    const metadatas: Record<string, string>[] = [];
    for (const shard of shards) {
      const entry = files.get(shard);
      if (!entry) throw new QuantkitError('ERR_HUB_NOT_FOUND', `the index names ${shard}, which the repository does not have`, { file: repo });
      const size = entry.lfs?.size ?? entry.size;
      const where = `${repo}/${shard}`;
      const blob = await fetchBlob(ctx, commit, shard);
      const n = checkHeaderLength(new Uint8Array(await blob.slice(0, 8).arrayBuffer()), size, where);
      const header = parseHeader(new Uint8Array(await blob.slice(8, 8 + n).arrayBuffer()), size, where);
      if (header.metadata) metadatas.push(header.metadata);
      for (const t of header.tensors) tensors.push({ name: t.name, dtype: t.dtype as never, shape: t.shape, bytes: t.end - t.begin, file: where });
    }
    const names = new Set(tensors.map((t) => t.name));
    if (names.size !== tensors.length) throw new QuantkitError('ERR_CHECKPOINT', 'a tensor is stored in two shards', { file: repo });
    const ckpt = Checkpoint.fromShapes(`${ctx.endpoint}/${repo}@${commit.slice(0, 12)}`, config, tensors, tiedAliases(metadatas, names, config));
    return fromCheckpoint(ckpt, 'hub safetensors headers', repo);
  } catch (e) {
    throw scrub(e, ctx.token);
  }
}
