/**
 * An output directory that appears complete or not at all: checked against the input, locked against a
 * second run, built under `<out>.quantkit-tmp-<pid>-<hex>` and renamed into place when the work
 * succeeds; on any error or abort the temporary directory is removed. `quantize` (one model) and
 * `quantizePipeline` (a diffusers folder of several) both write through it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isInside, pathExists } from './checkpoint.js';
import { QuantkitError, ioError } from './errors.js';
import { lockOutput } from './output-lock.js';

/**
 * Refuses outputs that would overwrite or live inside the input, or that exist without --force. `input`
 * is the model directory, or only the file when a single .safetensors file was given.
 */
export async function checkOutput(out: string, input: string, force: boolean): Promise<void> {
  const inputs = [input, await realpath(input)];
  // An output that does not exist yet may still sit under a link into the input: resolve its parent.
  const realOut = await realpath(out).catch(async () => join(await realpath(dirname(out)).catch(() => dirname(out)), basename(out)));
  const outs = [out, realOut];
  for (const i of inputs)
    for (const o of outs)
      if (i === o || isInside(i, o) || isInside(o, i))
        throw new QuantkitError('ERR_OUTPUT_INSIDE_INPUT', `output ${out} overlaps the input ${input}: choose a directory outside it`, { file: out });
  if ((await pathExists(out, 'ERR_IO')) && !force) throw new QuantkitError('ERR_OUTPUT_EXISTS', 'output already exists (use --force to replace it)', { file: out });
}

/** Runs `work` on a fresh temporary directory and publishes it as `out` when `work` succeeds. */
export async function stagedOutput<T>(out: string, input: string, force: boolean, work: (tmp: string) => Promise<T>): Promise<T> {
  await checkOutput(out, input, force);
  await mkdir(dirname(out), { recursive: true }).catch((e) => {
    throw ioError('ERR_IO', dirname(out), e, 'cannot create');
  });
  const lock = await lockOutput(out);
  const tmp = `${out}.quantkit-tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await checkOutput(out, input, force); // again, now that no other run can create it
    await mkdir(tmp).catch((e) => {
      throw ioError('ERR_IO', out, e, 'cannot create the output directory');
    });
    const result = await work(tmp);
    await publish(tmp, out);
    return result;
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    await lock.release();
  }
}

/** Moves the finished directory into place; an existing output (with --force) is replaced only now. */
export async function publish(tmp: string, out: string): Promise<void> {
  if (await pathExists(out, 'ERR_IO')) {
    const old = `${out}.quantkit-old-${process.pid}-${randomBytes(4).toString('hex')}`;
    await rename(out, old).catch((e) => {
      throw ioError('ERR_IO', out, e, 'cannot replace');
    });
    await rename(tmp, out);
    await rm(old, { recursive: true, force: true });
    return;
  }
  await rename(tmp, out).catch((e) => {
    throw ioError('ERR_IO', out, e, 'cannot move the finished output into place');
  });
}
