/**
 * The Hugging Face cache, laid out as Python's `huggingface_hub` lays it out so either tool reuses
 * what the other downloaded:
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
 *     models--org--name/
 *       blobs/<etag>                 file contents, named by LFS sha256 or git blob sha1
 *       blobs/<etag>.incomplete      a download in progress (resumed from its length)
 *       refs/<revision>              the commit a branch or tag pointed to when last resolved
 *       snapshots/<commit>/<path>    relative symbolic links into blobs/
 */
import { mkdir, readFile, readlink, rename, stat, symlink, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../atomic-file.js';
import { isInside } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';

export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HOME ? resolve(env.HF_HOME) : join(env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'huggingface');
}

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HUB_CACHE ? resolve(env.HF_HUB_CACHE) : env.HUGGINGFACE_HUB_CACHE ? resolve(env.HUGGINGFACE_HUB_CACHE) : join(hfHome(env), 'hub');
}

/** `org/name` → `models--org--name`. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

export const isCommitHash = (rev: string) => /^[0-9a-f]{40}$/.test(rev);

/**
 * A repository file path from a hub listing, accepted only if it is a plain relative path: no empty,
 * `.` or `..` segment, no absolute path, no backslash or NUL, so it cannot name anything outside the
 * snapshot directory.
 */
export function checkRepoPath(path: string, repo: string): string {
  const bad = path === '' || path.startsWith('/') || /^[a-zA-Z]:/.test(path) || path.includes('\\') || path.includes('\0') || path.split('/').some((s) => s === '' || s === '.' || s === '..');
  if (bad) throw new QuantkitError('ERR_HUB_LISTING', `the hub listing of ${repo} names an unsafe path ${JSON.stringify(path)}: refusing to download anything`, { file: repo });
  return path;
}

export class RepoCache {
  readonly dir: string;

  constructor(readonly repo: string, cacheDir = hubCacheDir()) {
    this.dir = join(cacheDir, repoFolderName(repo));
  }

  blobPath(etag: string): string {
    if (!/^[0-9a-zA-Z._-]+$/.test(etag) || etag.startsWith('.')) throw new QuantkitError('ERR_HUB_LISTING', `the hub gave an unusable file hash ${JSON.stringify(etag)}`, { file: this.repo });
    return join(this.dir, 'blobs', etag);
  }

  snapshotDir(commit: string): string {
    return join(this.dir, 'snapshots', commit);
  }

  snapshotPath(commit: string, path: string): string {
    const root = this.snapshotDir(commit);
    const p = resolve(root, checkRepoPath(path, this.repo));
    if (!isInside(root, p)) throw new QuantkitError('ERR_HUB_LISTING', `path ${JSON.stringify(path)} leaves the snapshot`, { file: this.repo });
    return p;
  }

  /** The commit a branch or tag pointed to when last resolved here (by either tool), or null. */
  async readRef(revision: string): Promise<string | null> {
    if (isCommitHash(revision)) return revision;
    const file = join(this.dir, 'refs', ...revision.split('/'));
    if (!isInside(join(this.dir, 'refs'), file)) throw new QuantkitError('ERR_USAGE', `bad revision name ${JSON.stringify(revision)}`);
    try {
      const sha = (await readFile(file, 'utf8')).trim();
      return isCommitHash(sha) ? sha : null;
    } catch {
      return null;
    }
  }

  async writeRef(revision: string, commit: string): Promise<void> {
    if (isCommitHash(revision)) return;
    const file = join(this.dir, 'refs', ...revision.split('/'));
    if (!isInside(join(this.dir, 'refs'), file)) throw new QuantkitError('ERR_USAGE', `bad revision name ${JSON.stringify(revision)}`);
    await mkdir(dirname(file), { recursive: true });
    await writeFileAtomic(file, commit);
  }

  /** Points snapshots/<commit>/<path> at the blob with a relative link, replacing any older link atomically. */
  async link(commit: string, path: string, etag: string): Promise<string> {
    const target = this.snapshotPath(commit, path);
    const blob = this.blobPath(etag);
    await mkdir(dirname(target), { recursive: true });
    const rel = relative(dirname(target), blob).split(sep).join('/');
    const existing = await readlink(target).catch(() => null);
    if (existing === rel) return target;
    const tmp = `${target}.quantkit-link-${randomBytes(4).toString('hex')}`;
    await symlink(rel, tmp);
    try {
      await rename(tmp, target);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    return target;
  }

  /** Size of a complete blob, or -1. */
  async blobSize(etag: string): Promise<number> {
    try {
      return (await stat(this.blobPath(etag))).size;
    } catch {
      return -1;
    }
  }
}
