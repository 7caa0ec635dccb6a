/**
 * The tokenizer metadata llama.cpp needs, from a Hugging Face tokenizer.json (+ tokenizer_config.json):
 *  - SentencePiece-style BPE with byte fallback (Llama 2, the bundled models): `tokenizer.ggml.model =
 *    llama`. llama.cpp's SPM tokenizer merges the adjacent pair with the highest token score; giving each
 *    merge product the score -rank reproduces BPE's lowest-rank-first order.
 *  - GPT-2-style byte-level BPE (Llama 3, Qwen2): `gpt2` with the merges and the pre-tokenizer's name,
 *    recognised from its split pattern.
 * Token types (normal, unknown, control, user-defined, unused, byte), BOS/EOS/UNK/PAD ids, the add-BOS/EOS
 * flags and the chat template come along.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ModelConfig, pathExists, readJsonObject } from '../checkpoint.js';
import { QuantkitError } from '../errors.js';
import { isJsonObject } from '../safetensors/strict-json.js';
import { type GgufKV, GgufValueType } from './gguf-container.js';

const S = GgufValueType.STRING, U32 = GgufValueType.U32, BOOL = GgufValueType.BOOL, ARR = GgufValueType.ARRAY;
const enum TokenType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string | null };
  added_tokens?: { id: number; content: string; special: boolean }[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  decoder?: unknown;
}

/** Recognises llama.cpp's pre-tokenizer names from the split regex of a byte-level tokenizer. */
function preTokenizerName(pre: unknown): string {
  const text = JSON.stringify(pre ?? null);
  if (text.includes("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}")) return 'llama-bpe';
  if (text.includes("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}|")) return 'qwen2';
  if (/"type":"ByteLevel"/.test(text) && !/"Split"/.test(text)) return 'gpt-2';
  throw new QuantkitError('ERR_PLAN', 'byte-level tokenizer with a pre-tokenizer llama.cpp names differently (known: GPT-2, Llama 3, Qwen2)');
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** The GGUF tokenizer keys for a model directory; `vocabRows` is the embedding's row count. */
export async function ggufTokenizerMetadata(dir: string, config: ModelConfig | null, vocabRows: number): Promise<GgufKV[]> {
  const file = join(dir, 'tokenizer.json');
  if (!(await pathExists(file))) throw new QuantkitError('ERR_PLAN', 'runnable GGUF needs tokenizer.json beside the weights (use --format gguf-raw without one)', { file: dir });
  const tj = (await readJsonObject(file, 'tokenizer.json')) as unknown as TokenizerJson;
  const tcFile = join(dir, 'tokenizer_config.json');
  const tc = (await pathExists(tcFile)) ? await readJsonObject(tcFile, 'tokenizer_config.json') : {};
  if (tj.model?.type !== 'BPE' || !isJsonObject(tj.model.vocab as never))
    throw new QuantkitError('ERR_PLAN', `tokenizer model '${String(tj.model?.type)}' is not supported (BPE only: SentencePiece-style or byte-level)`, { file });

  const byteLevel = /"ByteLevel"/.test(JSON.stringify(tj.pre_tokenizer ?? null)) || /"ByteLevel"/.test(JSON.stringify(tj.decoder ?? null));
  const tokens: string[] = [];
  const special = new Set<number>();
  const added = new Set<number>();
  for (const [t, id] of Object.entries(tj.model.vocab)) tokens[id] = t;
  for (const a of tj.added_tokens ?? []) {
    tokens[a.id] = a.content;
    added.add(a.id);
    if (a.special) special.add(a.id);
  }
  if (tokens.length > vocabRows) throw new QuantkitError('ERR_PLAN', `tokenizer has ${tokens.length} tokens but the embedding has ${vocabRows} rows`, { file });
  const types: number[] = [];
  for (let i = 0; i < vocabRows; i++) {
    const t = tokens[i];
    if (t === undefined) {
      tokens[i] = `[PAD${i}]`;
      types.push(TokenType.Unused);
    } else if (t === tj.model.unk_token) types.push(TokenType.Unknown);
    else if (special.has(i)) types.push(TokenType.Control);
    else if (added.has(i)) types.push(TokenType.UserDefined);
    else if (!byteLevel && /^<0x[0-9A-F]{2}>$/.test(t)) types.push(TokenType.Byte);
    else types.push(TokenType.Normal);
  }
  const merges = (tj.model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const kv: GgufKV[] = [];
  if (byteLevel) {
    kv.push({ key: 'tokenizer.ggml.model', type: S, value: 'gpt2' }, { key: 'tokenizer.ggml.pre', type: S, value: preTokenizerName(tj.pre_tokenizer) });
    kv.push({ key: 'tokenizer.ggml.tokens', type: ARR, elemType: S, value: tokens });
    kv.push({ key: 'tokenizer.ggml.token_type', type: ARR, elemType: GgufValueType.I32, value: types });
    kv.push({ key: 'tokenizer.ggml.merges', type: ARR, elemType: S, value: merges });
  } else {
    const rank = new Map<string, number>();
    merges.forEach((m, r) => {
      const product = m.replace(' ', '');
      if (!rank.has(product)) rank.set(product, r);
    });
    const scores = tokens.map((t) => -(rank.get(t) ?? 0));
    const norm = JSON.stringify(tj.normalizer ?? null);
    kv.push({ key: 'tokenizer.ggml.model', type: S, value: 'llama' }, { key: 'tokenizer.ggml.pre', type: S, value: 'default' });
    kv.push({ key: 'tokenizer.ggml.tokens', type: ARR, elemType: S, value: tokens });
    kv.push({ key: 'tokenizer.ggml.scores', type: ARR, elemType: GgufValueType.F32, value: scores });
    kv.push({ key: 'tokenizer.ggml.token_type', type: ARR, elemType: GgufValueType.I32, value: types });
    kv.push({ key: 'tokenizer.ggml.add_space_prefix', type: BOOL, value: /"Prepend"/.test(norm) || /"add_dummy_prefix":true/.test(norm) });
  }
  const idOf = (v: unknown) => {
    const c = tokenContent(v);
    const i = c === undefined ? -1 : tokens.indexOf(c);
    return i >= 0 ? i : undefined;
  };
  const ids: [string, number | undefined][] = [
    ['bos', idOf(tc.bos_token) ?? (typeof config?.bos_token_id === 'number' ? config.bos_token_id : undefined)],
    ['eos', idOf(tc.eos_token) ?? (typeof config?.eos_token_id === 'number' ? config.eos_token_id : undefined)],
    ['unknown', idOf(tc.unk_token) ?? idOf(tj.model.unk_token)],
    ['padding', idOf(tc.pad_token) ?? (typeof config?.pad_token_id === 'number' ? config.pad_token_id : undefined)],
  ];
  for (const [k, id] of ids) if (id !== undefined && id >= 0 && id < vocabRows) kv.push({ key: `tokenizer.ggml.${k}_token_id`, type: U32, value: id });
  if (typeof tc.add_bos_token === 'boolean') kv.push({ key: 'tokenizer.ggml.add_bos_token', type: BOOL, value: tc.add_bos_token });
  if (typeof tc.add_eos_token === 'boolean') kv.push({ key: 'tokenizer.ggml.add_eos_token', type: BOOL, value: tc.add_eos_token });
  let template = typeof tc.chat_template === 'string' ? tc.chat_template : undefined;
  if (!template && (await pathExists(join(dir, 'chat_template.jinja')))) template = await readFile(join(dir, 'chat_template.jinja'), 'utf8');
  if (template) kv.push({ key: 'tokenizer.chat_template', type: S, value: template });
  return kv;
}
