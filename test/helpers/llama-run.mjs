// Runs GGUF files in llama.cpp through node-llama-cpp (its prebuilt CPU build, no downloads) in a
// process of its own: a malformed file can abort the process, and the test process must survive it.
// Prints one JSON line.
//   node llama-run.mjs generate FILE '{"prompt": "Once upon a time", "maxTokens": 40}'
//   node llama-run.mjs memory FILE '{"contextSize": 512, "batchSize": 512}'
//   node llama-run.mjs tokenize FILE '{"text": "..."}'   (or {"texts": [...]}: one id list each)
//   node llama-run.mjs compare REFERENCE '{"candidates": [FILE...], "text": PATH, "maxTokens": 512}'
// Greedy decoding and the comparison read llama.cpp's full next-token distributions
// (controlledEvaluate), so no sampler setting can change them.
import { readFileSync } from 'node:fs';
import { GgufInsights, getLlama, readGgufFileInfo } from 'node-llama-cpp';

const [mode, file, argJson] = process.argv.slice(2);
const args = JSON.parse(argJson ?? '{}');
const logs = [];
const llama = await getLlama({ gpu: false, build: 'never', logLevel: mode === 'memory' ? 'debug' : 'error', logger: (_level, m) => logs.push(m), progressLogs: false });

async function open(path) {
  const model = await llama.loadModel({ modelPath: path });
  const context = await model.createContext({ contextSize: 512, threads: 1 });
  return { model, context, sequence: context.getSequence() };
}

/** Next-token distributions after every token of `tokens` (a Map id -> probability each). */
async function distributions(sequence, tokens) {
  await sequence.clearHistory();
  const res = await sequence.controlledEvaluate(tokens.map((t) => [t, { generateNext: { probabilities: true } }]));
  return res.map((r) => r.next.probabilities);
}

const argmax = (probs) => {
  let best = -1, bp = -1;
  for (const [t, p] of probs) if (p > bp) { bp = p; best = t; }
  return best;
};

if (mode === 'memory') {
  // What llama.cpp allocates (its load log, in MiB with two decimals) and what node-llama-cpp's own
  // estimator predicts (GgufInsights), for one context.
  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({ contextSize: args.contextSize, batchSize: args.batchSize, threads: 1 });
  // The native log arrives asynchronously: wait for the scheduler's line.
  for (let i = 0; i < 50 && !/compute buffer size/.test(logs.join('')); i++) await new Promise((r) => setTimeout(r, 20));
  const text = logs.join('');
  const mib = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) * 2 ** 20 : null;
  };
  const insights = await GgufInsights.from(await readGgufFileInfo(file), llama);
  console.log(JSON.stringify({
    modelSize: model.size,
    logged: {
      model: mib(/CPU_Mapped model buffer size = +([\d.]+) MiB/),
      kv_cache: mib(/CPU KV buffer size = +([\d.]+) MiB/),
      output: mib(/CPU +output buffer size = +([\d.]+) MiB/),
      compute: mib(/CPU compute buffer size = +([\d.]+) MiB/),
    },
    insights: {
      model: insights.estimateModelResourceRequirements({ gpuLayers: 0 }).cpuRam,
      context: insights.estimateContextResourceRequirements({ contextSize: args.contextSize, batchSize: args.batchSize, modelGpuLayers: 0 }).cpuRam,
    },
  }));
  await context.dispose();
} else if (mode === 'tokenize') {
  const model = await llama.loadModel({ modelPath: file });
  const one = (t) => model.tokenize(t).map(Number);
  console.log(JSON.stringify({ tokens: args.texts ? args.texts.map(one) : one(args.text), bos: model.tokens.bos, eos: model.tokens.eos }));
} else if (mode === 'generate') {
  const { model, sequence } = await open(file);
  const prompt = [model.tokens.bos, ...model.tokenize(args.prompt)];
  const out = [];
  let input = prompt;
  for (let i = 0; i < (args.maxTokens ?? 40); i++) {
    const res = await sequence.controlledEvaluate(input.map((t, j) => (j === input.length - 1 ? [t, { generateNext: { probabilities: true } }] : t)));
    const next = argmax(res[res.length - 1].next.probabilities);
    out.push(next);
    input = [next];
  }
  console.log(JSON.stringify({ size: model.size, prompt, tokens: out, text: model.detokenize(out) }));
} else if (mode === 'compare') {
  // Each story as BOS + tokens (at most maxTokens), as the reference perplexities were measured.
  const stories = readFileSync(args.text, 'utf8').split(/^<\|endoftext\|>$/m).map((s) => s.trim()).filter(Boolean);
  const ref = await open(file);
  const seqs = stories.map((s) => [ref.model.tokens.bos, ...ref.model.tokenize(s)].slice(0, args.maxTokens ?? 512));
  const refDists = [];
  for (const s of seqs) refDists.push(await distributions(ref.sequence, s));
  const nll = (dists) => {
    let sum = 0, n = 0;
    seqs.forEach((s, i) => {
      for (let j = 0; j + 1 < s.length; j++) {
        sum -= Math.log(Math.max(dists[i][j].get(s[j + 1]) ?? 0, 1e-30));
        n++;
      }
    });
    return { ppl: Math.exp(sum / n), predicted: n };
  };
  const out = { reference: { file, ...nll(refDists) }, candidates: [] };
  for (const c of args.candidates ?? []) {
    const cand = await open(c);
    const kls = [];
    let agree = 0;
    const candDists = [];
    for (const [i, s] of seqs.entries()) {
      const d = await distributions(cand.sequence, s);
      candDists.push(d);
      for (let j = 0; j + 1 < s.length; j++) {
        const p = refDists[i][j], q = d[j];
        let kl = 0;
        for (const [t, pt] of p) if (pt > 0) kl += pt * Math.log(pt / Math.max(q.get(t) ?? 0, 1e-30));
        kls.push(kl);
        if (argmax(p) === argmax(q)) agree++;
      }
    }
    kls.sort((a, b) => a - b);
    out.candidates.push({ file: c, size: cand.model.size, ...nll(candDists), klMean: kls.reduce((a, b) => a + b, 0) / kls.length, klP99: kls[Math.floor(0.99 * (kls.length - 1))], top1: agree / kls.length });
    await cand.model.dispose();
  }
  console.log(JSON.stringify(out));
}
process.exit(0);
