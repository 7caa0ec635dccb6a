/**
 * A local stand-in for the Hugging Face Hub on 127.0.0.1 (random port), answering the endpoints
 * `@huggingface/hub` calls with the headers it reads (see the library's fileDownloadInfo, listFiles,
 * modelInfo): revision → commit, paginated recursive tree listings with LFS sha256 and git oids,
 * `resolve` with Range requests (206 + Content-Range), ETag/X-Linked-Etag/X-Linked-Size/X-Repo-Commit,
 * X-Error-Code on refusals. Faults are injected per repository: gating, 429 bursts, a connection dropped
 * mid-file, corrupted bytes, hostile listing entries. It counts the bytes it serves per file.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';

export interface FakeRepo {
  /** Local model directory served as the repository (every file at its relative path). */
  dir: string;
  /** Requests without this bearer token get 401 (403 with another token), as gated repositories do. */
  token?: string;
  /** Answer the next N requests for any of this repo's files with 429. */
  rateLimit?: number;
  /** Close the connection after this many bytes of the first full download of each listed path. */
  dropAfter?: Record<string, number>;
  /** Serve these paths with one byte flipped (the listing keeps the true hashes). */
  corrupt?: string[];
  /** Extra listing entries (hostile names); their content is 4 bytes. */
  extraEntries?: string[];
}

interface FileEntry {
  path: string;
  bytes: Buffer;
  sha256: string;
  gitOid: string;
  lfs: boolean;
}

export interface FakeHub {
  url: string;
  commitOf(repo: string): string;
  /** Bytes served per `repo/path` (bodies only). */
  served: Map<string, number>;
  requests: string[];
  reset(): void;
  close(): Promise<void>;
}

function walk(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p, base) : [relative(base, p)];
  });
}

function entriesOf(r: FakeRepo): FileEntry[] {
  const paths = walk(r.dir).map((p) => ({ path: p, bytes: readFileSync(join(r.dir, p)) }));
  for (const p of r.extraEntries ?? []) paths.push({ path: p, bytes: Buffer.from('evil') });
  return paths.map(({ path, bytes }) => ({
    path,
    bytes,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    gitOid: createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex'),
    lfs: path.endsWith('.safetensors'),
  }));
}

export async function startFakeHub(repos: Record<string, FakeRepo>): Promise<FakeHub> {
  const files = new Map(Object.entries(repos).map(([id, r]) => [id, entriesOf(r)]));
  const commits = new Map([...files].map(([id, es]) => [id, createHash('sha1').update(id + es.map((e) => e.gitOid).join()).digest('hex')]));
  const served = new Map<string, number>();
  const requests: string[] = [];
  const rateLeft = new Map(Object.entries(repos).map(([id, r]) => [id, r.rateLimit ?? 0]));
  const dropped = new Set<string>();

  const refuse = (res: ServerResponse, status: number, code: string, message = code) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-error-code': code });
    res.end(JSON.stringify({ error: message }));
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url!, 'http://x');
    requests.push(`${req.method} ${url.pathname}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)(?:\/(.*))?$/.exec(url.pathname);
    const resolveM = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repoId = api?.[1] ?? resolveM?.[1];
    const repo = repoId ? repos[repoId] : undefined;
    if (!repoId || !repo) return refuse(res, 404, 'RepoNotFound', 'Repository not found');
    if (repo.token) {
      const auth = req.headers.authorization;
      if (!auth) return refuse(res, 401, 'GatedRepo', 'Access to this model is restricted. You must have access to it and be authenticated.');
      if (auth !== `Bearer ${repo.token}`) return refuse(res, 403, 'GatedRepo', 'Access to this model is restricted and you are not in the authorized list.');
    }
    const commit = commits.get(repoId)!;
    const rev = decodeURIComponent(api?.[3] ?? resolveM![2]!);
    if (rev !== 'main' && rev !== commit) return refuse(res, 404, 'RevisionNotFound', 'Invalid rev id');
    const es = files.get(repoId)!;

    if (api?.[2] === 'revision') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ _id: 'x', id: repoId, sha: commit, private: false, gated: repo.token ? 'manual' : false, downloads: 0, likes: 0, lastModified: '2026-01-01T00:00:00.000Z', siblings: es.map((e) => ({ rfilename: e.path })) }));
    }
    if (api?.[2] === 'tree') {
      const recursive = url.searchParams.get('recursive') === 'true';
      const all = es.filter((e) => recursive || !e.path.includes('/'));
      // Pages of three entries, linked as the hub links them.
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = all.slice(cursor, cursor + 3).map((e) => ({
        type: 'file', path: e.path, size: e.lfs ? 134 : e.bytes.length, oid: e.gitOid,
        ...(e.lfs ? { lfs: { oid: e.sha256, size: e.bytes.length, pointerSize: 134 } } : {}),
      }));
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (cursor + 3 < all.length) {
        const next = new URL(req.url!, `http://${req.headers.host}`);
        next.searchParams.set('cursor', String(cursor + 3));
        headers.link = `<${next.href}>; rel="next"`;
      }
      res.writeHead(200, headers);
      return res.end(JSON.stringify(page));
    }

    const path = decodeURIComponent(resolveM![3]!);
    const e = es.find((x) => x.path === path);
    if (!e) return refuse(res, 404, 'EntryNotFound', 'Entry not found');
    if ((rateLeft.get(repoId) ?? 0) > 0) {
      rateLeft.set(repoId, rateLeft.get(repoId)! - 1);
      res.writeHead(429, { 'retry-after': '0', 'content-type': 'text/plain' });
      return res.end('slow down');
    }
    let body = e.bytes;
    if (repo.corrupt?.includes(path)) {
      body = Buffer.from(body);
      body[body.length >> 1]! ^= 0xff;
    }
    const total = body.length;
    let start = 0, end = total - 1, status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), total - 1) : total - 1;
      status = 206;
    }
    const etag = e.lfs ? e.sha256 : e.gitOid;
    const headers: Record<string, string> = {
      'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', etag: `"${etag}"`,
      'x-repo-commit': commit, 'content-length': String(end - start + 1),
      ...(e.lfs ? { 'x-linked-etag': `"${e.sha256}"`, 'x-linked-size': String(total) } : {}),
      ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${total}` } : {}),
    };
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return res.end();
    const chunk = body.subarray(start, end + 1);
    const key = `${repoId}/${path}`;
    const drop = repo.dropAfter?.[path];
    if (drop !== undefined && !dropped.has(key) && chunk.length > drop) {
      dropped.add(key);
      served.set(key, (served.get(key) ?? 0) + drop);
      res.write(chunk.subarray(0, drop), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    served.set(key, (served.get(key) ?? 0) + chunk.length);
    res.end(chunk);
  };

  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    commitOf: (repo) => commits.get(repo)!,
    served,
    requests,
    reset() {
      served.clear();
      requests.length = 0;
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
