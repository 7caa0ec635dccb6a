import { basename, dirname, join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { writeImatrixFile } from '../../formats/imatrix-file.js';
import { computeImatrix } from '../../imatrix.js';
import { checkThreads } from '../quantize-options.js';

interface Args {
  model: string;
  text: string;
  output?: string;
  ctx?: number;
  chunks?: number;
  'process-output': boolean;
  threads?: number;
}

export const ImatrixCommand: CommandModule<object, Args> = {
  command: 'imatrix <model>',
  describe: "compute llama.cpp's importance matrix (per-column mean squared activations of every linear layer's input) with quantkit's forward pass",
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'Llama-family model directory (config.json, tokenizer.json, safetensors)' })
      .option('text', { type: 'string', demandOption: true, requiresArg: true, describe: 'calibration text file, tokenized whole as llama-imatrix does' })
      .option('output', { alias: 'o', type: 'string', requiresArg: true, describe: 'imatrix file to write, llama.cpp GGUF format (default: <model>.imatrix.gguf beside the model)' })
      .option('ctx', { type: 'number', describe: 'tokens per chunk, each starting with BOS (llama-imatrix -c; default 512)' })
      .option('chunks', { type: 'number', describe: 'use at most this many chunks of the text' })
      .option('process-output', { type: 'boolean', default: false, describe: "also collect the output head's input (llama-imatrix --process-output; untied heads only)" })
      .option('threads', { type: 'number', describe: 'threads, 1 to 256 (default: the number of CPUs)' })
      .example('quantkit imatrix models/stories260k --text data/tinystories-valid-excerpt.txt -o stories.imatrix.gguf', 'then: quantkit quantize models/stories260k --format gguf --gguf-type Q4_0 --imatrix stories.imatrix.gguf') as never,
  handler: async (args) => {
    const threads = checkThreads(args.threads);
    const out = resolve(args.output ?? join(dirname(resolve(args.model)), `${basename(resolve(args.model))}.imatrix.gguf`));
    const m = await computeImatrix(args.model, { text: args.text, ctx: args.ctx, chunks: args.chunks, processOutput: args['process-output'], ...(threads !== undefined ? { threads } : {}) });
    await writeImatrixFile(out, m);
    process.stdout.write(`${out}: ${m.entries.size} tensors, ${m.chunkCount} chunks of ${m.chunkSize} tokens\n`);
  },
};
