/**
 * Text -> token ids from a Hugging Face tokenizer.json, for perplexity runs. Supports what the Llama
 * family ships: SentencePiece-style BPE (`model.type: BPE`, a normalizer or Metaspace pre-tokenizer that
 * turns spaces into '▁' and prepends one, byte fallback for characters outside the vocabulary). The
 * algorithm is the Hugging Face `tokenizers` one: split into characters, then repeatedly merge the adjacent
 * pair with the lowest merge rank (leftmost first on ties). Byte-level BPE (GPT-2 style) is refused with a
 * clear error rather than tokenized almost right: a perplexity over wrong ids would look plausible.
 */
import { QuantkitError } from '../errors.js';
import { readJsonObject } from '../checkpoint.js';

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string | null; ignore_merges?: boolean };
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

type Step = { type: 'prepend'; text: string } | { type: 'replace'; from: string; to: string };

const SPACE_MARK = '\u2581';

/** The text rewrites a SentencePiece-style tokenizer applies before BPE, in order. */
function textSteps(tj: TokenizerJson, file: string): Step[] {
  const steps: Step[] = [];
  const visit = (node: unknown, where: string): void => {
    if (node === null || node === undefined) return;
    const n = node as Record<string, unknown>;
    switch (n.type) {
      case 'Sequence':
        for (const child of (n.normalizers ?? n.pretokenizers ?? []) as unknown[]) visit(child, where);
        return;
      case 'Prepend':
        steps.push({ type: 'prepend', text: String(n.prepend) });
        return;
      case 'Replace': {
        const pattern = n.pattern as { String?: string } | undefined;
        if (typeof pattern?.String !== 'string') break;
        steps.push({ type: 'replace', from: pattern.String, to: String(n.content) });
        return;
      }
      case 'Metaspace': {
        if (n.split === true) break;
        const mark = typeof n.replacement === 'string' ? n.replacement : SPACE_MARK;
        const scheme = n.prepend_scheme ?? (n.add_prefix_space === false ? 'never' : 'always');
        steps.push({ type: 'replace', from: ' ', to: mark });
        if (scheme !== 'never') steps.push({ type: 'prepend', text: mark });
        return;
      }
      default:
        break;
    }
    throw new QuantkitError('ERR_EVAL', `${where} '${String(n.type)}' is not supported by quantkit's tokenizer (SentencePiece-style BPE only)`, { file });
  };
  visit(tj.normalizer, 'normalizer');
  visit(tj.pre_tokenizer, 'pre-tokenizer');
  return steps;
}

export class Tokenizer {
  private readonly ranks = new Map<string, number>();
  private readonly pieces: string[] = [];

  private constructor(
    private readonly vocab: Map<string, number>,
    merges: [string, string][],
    private readonly steps: Step[],
    private readonly byteFallback: boolean,
    private readonly unkId: number | undefined,
    readonly vocabSize: number,
  ) {
    for (const [t, id] of vocab) this.pieces[id] = t;
    merges.forEach(([a, b], i) => {
      const key = `${a} ${b}`;
      if (!this.ranks.has(key)) this.ranks.set(key, i);
    });
  }

  static async fromFile(file: string): Promise<Tokenizer> {
    const tj = (await readJsonObject(file, 'tokenizer.json')) as TokenizerJson;
    const m = tj.model;
    if (m?.type !== 'BPE' || !m.vocab || typeof m.vocab !== 'object')
      throw new QuantkitError('ERR_EVAL', `tokenizer model '${String(m?.type)}' is not supported (BPE only)`, { file });
    if (/"ByteLevel"/.test(JSON.stringify(tj.pre_tokenizer ?? null)))
      throw new QuantkitError('ERR_EVAL', 'byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2) are not supported for evaluation yet', { file });
    const vocab = new Map<string, number>();
    let size = 0;
    for (const [t, id] of Object.entries(m.vocab)) {
      vocab.set(t, id);
      size = Math.max(size, id + 1);
    }
    for (const a of tj.added_tokens ?? []) size = Math.max(size, a.id + 1);
    const merges = (m.merges ?? []).map((x): [string, string] => {
      if (Array.isArray(x) && x.length === 2) return [x[0], x[1]];
      const s = String(x);
      const at = s.indexOf(' ', 1);
      if (at < 0) throw new QuantkitError('ERR_EVAL', `malformed merge '${s}'`, { file });
      return [s.slice(0, at), s.slice(at + 1)];
    });
    const unk = m.unk_token ? vocab.get(m.unk_token) : undefined;
    return new Tokenizer(vocab, merges, textSteps(tj, file), m.byte_fallback === true, unk, size);
  }

  /** Token ids of `text` (no BOS/EOS: the caller adds them). */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    let s = text;
    for (const st of this.steps) s = st.type === 'prepend' ? st.text + s : s.split(st.from).join(st.to);
    // Symbols: one per code point, as strings (merges work on strings, ids come at the end).
    let symbols: string[] = Array.from(s);
    symbols = this.merge(symbols);
    const ids: number[] = [];
    for (const sym of symbols) {
      const id = this.vocab.get(sym);
      if (id !== undefined) { ids.push(id); continue; }
      if (this.byteFallback) {
        const bytes = Buffer.from(sym, 'utf8');
        const byteIds = Array.from(bytes, (b) => this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
        if (byteIds.every((x) => x !== undefined)) { ids.push(...(byteIds as number[])); continue; }
      }
      if (this.unkId === undefined) throw new QuantkitError('ERR_EVAL', `character ${JSON.stringify(sym)} has no token and the tokenizer has no unk token`);
      if (ids[ids.length - 1] !== this.unkId) ids.push(this.unkId);  // fuse_unk
    }
    return ids;
  }

  /**
   * Text of token ids, as the SentencePiece-style decoders do: '▁' back to spaces, byte tokens
   * (<0xNN>) joined into UTF-8, the one leading space the normalizer added removed.
   */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const p = this.pieces[id];
      if (p === undefined) continue;
      const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(p);
      if (byte) bytes.push(parseInt(byte[1]!, 16));
      else bytes.push(...Buffer.from(p.split(SPACE_MARK).join(' '), 'utf8'));
    }
    const text = Buffer.from(bytes).toString('utf8');
    return this.steps.some((s) => s.type === 'prepend') && text.startsWith(' ') ? text.slice(1) : text;
  }

  /** Lowest-rank-first merging of adjacent symbols (O(n²) per word; evaluation texts are short). */
  private merge(symbols: string[]): string[] {
    for (;;) {
      let best = Infinity, at = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const r = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (r !== undefined && r < best) { best = r; at = i; }
      }
      if (at < 0) return symbols;
      const merged = symbols[at]! + symbols[at + 1]!;
      // Merge every non-overlapping occurrence of this pair, left to right, as tokenizers does.
      const out: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`) === best) {
          out.push(merged);
          i++;
        } else out.push(symbols[i]!);
      }
      symbols = out;
    }
  }
}
