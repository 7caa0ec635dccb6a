import type { CommandModule } from 'yargs';
import { QuantkitError } from '../../errors.js';
import { parseRepoId } from '../../hub/client.js';
import { progressBar } from '../progress-bar.js';
import { abortOnSigint } from '../signals.js';
import { formatBytes } from '../../units.js';

interface Args {
  repo: string;
  revision?: string;
  include?: string[];
  exclude?: string[];
  token?: string;
  'cache-dir'?: string;
  concurrency: number;
  json: boolean;
  quiet: boolean;
}

export const PullCommand: CommandModule<object, Args> = {
  command: 'pull <repo>',
  describe: 'download a Hugging Face model (safetensors, index, config, tokenizer) into the cache Python\'s huggingface_hub shares',
  builder: (y) =>
    y
      .positional('repo', { type: 'string', demandOption: true, describe: 'org/name[@revision]' })
      .option('revision', { type: 'string', describe: 'branch, tag or commit (default main)' })
      .option('include', { type: 'string', array: true, requiresArg: true, describe: 'also download files matching GLOB; repeatable (* matches any run of characters, / included)' })
      .option('exclude', { type: 'string', array: true, requiresArg: true, describe: 'never download files matching GLOB; repeatable' })
      .option('token', { type: 'string', describe: 'access token (default: HF_TOKEN, then the huggingface-cli login token)' })
      .option('cache-dir', { type: 'string', describe: 'cache directory (default: HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub)' })
      .option('concurrency', { type: 'number', default: 4, describe: 'files downloaded at once' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing but errors (and --json)' })
      .example('quantkit pull meta-llama/Llama-3.2-1B', 'safetensors, index, config and tokenizer files')
      .example('quantkit pull Qwen/Qwen2-0.5B@main --include "*.md" --exclude "*.bin"', 'more files, or fewer') as never,
  handler: async (args) => {
    const id = parseRepoId(args.repo);
    if (!id) throw new QuantkitError('ERR_USAGE', `not a hub id: '${args.repo}' (expected org/name or org/name@revision)`);
    const bar = args.quiet || args.json ? { update() {}, done() {} } : progressBar();
    const { signal, dispose } = abortOnSigint();
    try {
      const { pull } = await import('../../hub/pull.js'); // only this command downloads
      const r = await pull(id.repo, {
        revision: args.revision ?? id.revision,
        include: args.include,
        exclude: args.exclude,
        token: args.token,
        cacheDir: args['cache-dir'],
        concurrency: args.concurrency,
        signal,
        onProgress: (p) => bar.update(p),
      });
      bar.done();
      if (args.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else if (!args.quiet) {
        const cached = r.files.filter((f) => f.cached).length;
        process.stdout.write(`${r.repo}@${r.revision} (${r.commit.slice(0, 12)}): ${r.files.length} files, ${cached} already in the cache, ${formatBytes(r.downloadedBytes)} downloaded${r.offline ? ' (offline)' : ''}\n${r.snapshot}\n`);
      }
    } finally {
      bar.done();
      dispose();
    }
  },
};
