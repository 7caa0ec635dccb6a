// Measures what onnxruntime-node allocates for an exported folder, in a fresh process so the figures
// are this model's alone: resident memory (VmRSS) before the session, after creating it, and the peak
// (VmHWM) over a prompt of `tokens` tokens run with an empty cache. Prints one JSON line.
//   node ort-memory.mjs ONNX_FILE TOKENS [THREADS]
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const [file, tokensArg, threadsArg] = process.argv.slice(2);
const tokens = Number(tokensArg);
const status = () => Object.fromEntries(readFileSync('/proc/self/status', 'utf8').split('\n').filter((l) => /^Vm(RSS|HWM):/.test(l)).map((l) => [l.slice(2, 5), Number(/(\d+)/.exec(l)[1]) * 1024]));
// No throwaway session first: the library pages the first session touches are part of what a user's
// process pays for it, so they stay in the session's fixed cost.
const feeds = (s, n) => {
  const f = { input_ids: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]), attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]) };
  for (const m of s.inputMetadata) if (m.name.startsWith('past_key_values.')) f[m.name] = new ort.Tensor(m.type, m.type === 'float16' ? new Uint16Array(0) : new Float32Array(0), [1, m.shape[1], 0, m.shape[3]]);
  return f;
};
globalThis.gc?.();
const base = status().RSS;
const session = await ort.InferenceSession.create(file, { intraOpNumThreads: Number(threadsArg ?? 1), logSeverityLevel: 3 });
const loaded = status().RSS;
const out = await session.run(feeds(session, tokens));
const after = status();
const logits = out.logits.data.length;
console.log(JSON.stringify({ base, loaded: loaded - base, peak: after.HWM - base, after: after.RSS - base, logits }));
