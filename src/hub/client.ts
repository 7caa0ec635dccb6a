/**
 * How quantkit talks to the Hugging Face Hub: which endpoint (`HF_ENDPOINT`), which token (`--token`,
 * `HF_TOKEN`, or the token file `huggingface-cli login` writes), and a fetch that every
 * `@huggingface/hub` call goes through: it retries 429 and 5xx answers and network failures with
 * backoff (honouring Retry-After), and turns every other refusal into a QuantkitError that says what to do.
 * The token is sent only as a header; it never appears in any message quantkit prints.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QuantkitError } from '../errors.js';
import { hfHome } from './cache.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubOptions {
  /** Access token (default: HF_TOKEN, then $HF_HOME/token). */
  token?: string;
  /** Hub URL (default: HF_ENDPOINT, then https://huggingface.co). */
  endpoint?: string;
  /** Attempts per request for 429/5xx/network failures (default 5). */
  retries?: number;
  /** First backoff delay in ms, doubled per attempt, capped at 8 s (default 500). */
  backoffMs?: number;
  signal?: AbortSignal;
}

export interface HubContext {
  repo: string;
  endpoint: string;
  token: string | undefined;
  fetch: typeof fetch;
  signal?: AbortSignal;
}

export function resolveToken(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const t = explicit ?? env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN ?? readTokenFile(env);
  if (t === undefined || t.trim() === '') return undefined;
  const token = t.trim();
  // The hub library refuses other shapes; say so without echoing the value.
  if (!token.startsWith('hf_')) throw new QuantkitError('ERR_USAGE', 'the Hugging Face token does not look like one (it should start with hf_); check HF_TOKEN or --token');
  return token;
}

function readTokenFile(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return readFileSync(env.HF_TOKEN_PATH ?? join(hfHome(env), 'token'), 'utf8');
  } catch {
    return undefined;
  }
}

export function resolveEndpoint(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return (explicit ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** Removes a token from text that is about to be shown (errors from lower layers may quote requests). */
export function redact(text: string, token: string | undefined): string {
  return token ? text.split(token).join('hf_***') : text;
}

/** A token must never reach a message, whatever layer produced the error. */
export function scrub(e: unknown, token: string | undefined): unknown {
  if (token && e instanceof Error && e.message.includes(token)) e.message = redact(e.message, token);
  return e;
}

const RETRYABLE = new Set([429, 500, 502, 503, 504]);

function retryAfterMs(h: string | null): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const d = Date.parse(h);
  return Number.isFinite(d) ? Math.max(0, d - Date.now()) : undefined;
}

/** What a refusal means for the user, from the status and the hub's X-Error-Code. */
function refusal(res: Response, ctx: { repo: string; endpoint: string; token: string | undefined }, url: string): QuantkitError {
  const code = res.headers.get('x-error-code') ?? '';
  const what = new URL(url).pathname;
  const page = `${ctx.endpoint}/${ctx.repo}`;
  if (code === 'RepoNotFound' || (res.status === 404 && what.includes('/api/models/') && !code))
    return new QuantkitError('ERR_HUB_NOT_FOUND', `repository ${ctx.repo} not found on ${ctx.endpoint}${ctx.token ? ' (or it is private and this token cannot see it)' : ' (if it is private, set HF_TOKEN)'}`, { file: ctx.repo });
  if (code === 'RevisionNotFound') return new QuantkitError('ERR_HUB_NOT_FOUND', `revision not found in ${ctx.repo}: ${decodeURIComponent(what.split('/revision/')[1] ?? what.split('/tree/')[1] ?? '')}`, { file: ctx.repo });
  if (code === 'EntryNotFound' || res.status === 404) return new QuantkitError('ERR_HUB_NOT_FOUND', `file not found: ${decodeURIComponent(what)}`, { file: ctx.repo });
  if (res.status === 401 || res.status === 403 || code === 'GatedRepo') {
    if (!ctx.token)
      return new QuantkitError('ERR_HUB_AUTH', `${ctx.repo} needs an access token (gated or private): accept its conditions at ${page}, create a read token at ${ctx.endpoint}/settings/tokens, and set HF_TOKEN (or pass --token)`, { file: ctx.repo });
    return new QuantkitError('ERR_HUB_AUTH', `this token has no access to ${ctx.repo}: ${code === 'GatedRepo' || res.status === 403 ? `request access at ${page} and wait for approval` : 'it is invalid or expired; create a new one'} (HTTP ${res.status})`, { file: ctx.repo });
  }
  return new QuantkitError('ERR_HUB_NETWORK', `the hub answered HTTP ${res.status} for ${what}`, { file: ctx.repo });
}

/**
 * A fetch for @huggingface/hub: retries what is worth retrying and throws QuantkitErrors for refusals.
 * The one refusal it passes through is a file's 404 during a lookup (`EntryNotFound`), which the
 * library turns into `null`.
 */
export function hubFetch(ctx: { repo: string; endpoint: string; token: string | undefined; signal?: AbortSignal }, o: HubOptions = {}): typeof fetch {
  const attempts = o.retries ?? 5;
  const base = o.backoffMs ?? 500;
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    let lastError = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      ctx.signal?.throwIfAborted();
      let res: Response;
      try {
        res = await fetch(input, { ...init, signal: ctx.signal });
      } catch (e) {
        if (ctx.signal?.aborted) throw e;
        lastError = `network error: ${redact(String((e as Error).cause ?? (e as Error).message), ctx.token)}`;
        if (attempt < attempts) await sleep(Math.min(8000, base * 2 ** (attempt - 1)), undefined, { signal: ctx.signal });
        continue;
      }
      if (res.ok) return res;
      if (RETRYABLE.has(res.status)) {
        lastError = `HTTP ${res.status}`;
        const wait = retryAfterMs(res.headers.get('retry-after')) ?? Math.min(8000, base * 2 ** (attempt - 1));
        await res.body?.cancel().catch(() => undefined);
        if (attempt < attempts) await sleep(Math.min(30_000, wait), undefined, { signal: ctx.signal });
        continue;
      }
      await res.body?.cancel().catch(() => undefined);
      throw refusal(res, ctx, url);
    }
    throw new QuantkitError('ERR_HUB_NETWORK', `${new URL(url).pathname}: gave up after ${attempts} attempts (${lastError}); check the connection or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache`, { file: ctx.repo });
  };
}

export function hubContext(repo: string, o: HubOptions = {}): HubContext {
  const endpoint = resolveEndpoint(o.endpoint);
  const token = resolveToken(o.token);
  const base = { repo, endpoint, token, signal: o.signal };
  return { ...base, fetch: hubFetch(base, o) };
}

/** `org/name[@revision]` → parts; anything else is not a hub id. */
export function parseRepoId(s: string): { repo: string; revision: string | undefined } | null {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*)(?:@(.+))?$/.exec(s);
  if (!m || m[1]!.includes('..')) return null;
  return { repo: m[1]!, revision: m[2] };
}
