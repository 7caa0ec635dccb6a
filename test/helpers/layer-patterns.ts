/**
 * Compact names for many GGUF tensors: `blk.{0-3,6,7}.attn_v.weight` stands for the attn_v of layers 0,
 * 1, 2, 3, 6 and 7 (test/fixtures/llama-quantize-types.json is written and read with these).
 */

/** Groups `blk.N.rest` names by `rest` into `blk.{ranges}.rest`; other names stay as they are. */
export function compressNames(names: string[]): string[] {
  const layers = new Map<string, number[]>();
  const out: string[] = [];
  for (const n of names) {
    const m = /^blk\.(\d+)\.(.+)$/.exec(n);
    if (!m) out.push(n);
    else (layers.get(m[2]!) ?? layers.set(m[2]!, []).get(m[2]!)!).push(Number(m[1]));
  }
  for (const [rest, ls] of layers) {
    const sorted = [...ls].sort((a, b) => a - b);
    const parts: string[] = [];
    for (let i = 0; i < sorted.length; ) {
      let j = i;
      while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
      parts.push(j - i >= 2 ? `${sorted[i]}-${sorted[j]}` : sorted.slice(i, j + 1).join(','));
      i = j + 1;
    }
    out.push(`blk.{${parts.join(',')}}.${rest}`);
  }
  return out;
}

/** The names a compressed name stands for. */
export function expandName(pattern: string): string[] {
  const m = /^blk\.\{([\d,-]+)\}\.(.+)$/.exec(pattern);
  if (!m) return [pattern];
  return m[1]!.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    return Array.from({ length: (b ?? a!) - a! + 1 }, (_, k) => `blk.${a! + k}.${m[2]}`);
  });
}
