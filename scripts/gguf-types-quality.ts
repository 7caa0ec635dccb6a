/**
 * Perplexity of llama.cpp's file types on the bundled models, measured in llama.cpp itself (node-llama-cpp,
 * test/helpers/llama-run.mjs compare: every story as BOS + tokens, at most 512), without and with an
 * importance matrix (a benchmark, not a test: the figures in README "Choosing a GGUF type").
 *
 *   npm run build && npx tsx scripts/gguf-types-quality.ts [--types Q4_0,Q4_K_M,...] [--models stories260k,tinystories-656k]
 *
 * 1. Every type without an importance matrix, on the whole bundled evaluation text (the README column).
 * 2. The importance matrix's effect at equal size: `quantkit imatrix` on the first half of the stories
 *    (documents 1..n/2), then every type with and without `--imatrix`, perplexity on the other half only
 *    (held out: the matrix never saw it). File sizes are printed: with and without are the same bytes
 *    except where llama.cpp's rules change a type with an imatrix (Q4_0/Q5_0 --no-pure's first ffn_down).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DOCUMENT_SEPARATOR } from '../src/eval/perplexity.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'quantkit.js');
const EVAL = join(ROOT, 'data', 'tinystories-valid-excerpt.txt');
const ti = process.argv.indexOf('--types');
const TYPES = ti > 0 ? process.argv[ti + 1]!.split(',') : ['Q8_0', 'Q6_K', 'Q5_K_M', 'Q5_K_S', 'Q5_1', 'Q5_0', 'Q4_K_M', 'Q4_K_S', 'IQ4_NL', 'Q4_1', 'Q4_0', 'Q3_K_L', 'Q3_K_M', 'Q3_K_S', 'Q2_K'];
const mi = process.argv.indexOf('--models');
const MODELS = mi > 0 ? process.argv[mi + 1]!.split(',') : ['stories260k', 'tinystories-656k'];
const work = mkdtempSync(join(tmpdir(), 'quantkit-gguf-quality-'));

const run = (args: string[]) => execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const ggufIn = (dir: string) => join(dir, readdirSync(dir).find((f) => f.endsWith('.gguf'))!);

function write(model: string, type: string, out: string, imatrix?: string): string {
  run(['quantize', model, '--format', 'gguf', '--gguf-type', type, '-o', out, '--force', '-q', ...(imatrix ? ['--imatrix', imatrix] : [])]);
  return ggufIn(out);
}

function compare(reference: string, candidates: string[], text: string): { ppl: number; candidates: { file: string; ppl: number; klMean: number; top1: number }[] } {
  const out = execFileSync(process.execPath, [join(ROOT, 'test', 'helpers', 'llama-run.mjs'), 'compare', reference, JSON.stringify({ candidates, text, maxTokens: 512 })], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const r = JSON.parse(out.trim().split('\n').pop()!);
  return { ppl: r.reference.ppl, candidates: r.candidates };
}

try {
  const stories = readFileSync(EVAL, 'utf8').split(DOCUMENT_SEPARATOR).map((s) => s.trim()).filter(Boolean);
  const half = Math.floor(stories.length / 2);
  const calib = join(work, 'calibration.txt'), heldOut = join(work, 'held-out.txt');
  writeFileSync(calib, stories.slice(0, half).join('\n<|endoftext|>\n'));
  writeFileSync(heldOut, stories.slice(half).join('\n<|endoftext|>\n'));
  for (const name of MODELS) {
    const model = join(ROOT, 'models', name);
    const f16 = write(model, 'F16', join(work, `${name}-F16`));
    const imatrix = join(work, `${name}.imatrix.gguf`);
    // 128-token chunks: the calibration half holds a few thousand tokens.
    run(['imatrix', model, '--text', calib, '--ctx', '128', '-o', imatrix]);
    const plain = TYPES.map((t) => write(model, t, join(work, `${name}-${t}`)));
    const withIm = TYPES.map((t) => write(model, t, join(work, `${name}-${t}-imatrix`), imatrix));
    const whole = compare(f16, plain, EVAL);
    const held = compare(f16, [...plain, ...withIm], heldOut);
    console.log(`\n${name}: F16 perplexity ${whole.ppl.toFixed(4)} (whole text), ${held.ppl.toFixed(4)} (held-out half); imatrix from ${half} stories, 128-token chunks`);
    console.log('type     bytes      ppl(whole)  KL(whole)  | held-out: bytes(imatrix)  ppl rtn   ppl imatrix  KL rtn    KL imatrix');
    TYPES.forEach((t, i) => {
      const w = whole.candidates[i]!, a = held.candidates[i]!, b = held.candidates[TYPES.length + i]!;
      console.log(`${t.padEnd(8)} ${String(statSync(plain[i]!).size).padStart(9)}  ${w.ppl.toFixed(4).padStart(10)}  ${w.klMean.toFixed(5)}    | ${String(statSync(withIm[i]!).size).padStart(9)}  ${a.ppl.toFixed(4).padStart(15)}  ${b.ppl.toFixed(4).padStart(11)}  ${a.klMean.toFixed(5)}   ${b.klMean.toFixed(5)}`);
    });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
