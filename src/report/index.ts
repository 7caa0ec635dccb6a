/**
 * `report`: the accuracy-vs-size sweep (sweep.ts) written as report.json, report.md and a
 * self-contained report.html into a new directory, all or nothing (a temporary directory renamed into
 * place when every file is written).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { modelName, pathExists } from '../checkpoint.js';
import { QuantkitError, ioError } from '../errors.js';
import { jsonReplacer, localModel, publish } from '../quantize.js';
import { VERSION } from '../version.js';
import { renderHtml, renderMarkdown } from './render.js';
import { type ReportOptions, type SweepResult, runSweep } from './sweep.js';

export type { ReportOptions, SweepResult, VariantResult, SkippedVariant, SweepAxes, WeightError } from './sweep.js';
export { DEFAULT_AXES, paretoFront } from './sweep.js';

export interface ReportRunOptions extends ReportOptions {
  /** Output directory (default: `<model>-report` in the working directory). */
  output?: string;
  /** Replace an existing output directory. */
  force?: boolean;
}

export interface ReportResult {
  output: string;
  report: SweepResult & { quantkit: string };
}

export async function report(model: string, options: ReportRunOptions = {}): Promise<ReportResult> {
  model = await localModel(model, { signal: options.signal });
  const out = resolve(options.output ?? `${modelName(resolve(model))}-report`);
  if ((await pathExists(out, 'ERR_IO')) && !options.force) throw new QuantkitError('ERR_OUTPUT_EXISTS', 'output already exists (use --force to replace it)', { file: out });
  const result = { quantkit: VERSION, ...(await runSweep(model, options)) };
  await mkdir(dirname(out), { recursive: true }).catch((e) => {
    throw ioError('ERR_IO', dirname(out), e, 'cannot create');
  });
  const tmp = join(dirname(out), `.${basename(out)}.quantkit-tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(tmp);
    await writeFile(join(tmp, 'report.json'), JSON.stringify(result, jsonReplacer, 2) + '\n');
    await writeFile(join(tmp, 'report.md'), renderMarkdown(result));
    await writeFile(join(tmp, 'report.html'), renderHtml(result));
    await publish(tmp, out);
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
  return { output: out, report: result };
}
