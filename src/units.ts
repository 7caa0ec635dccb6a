/** Byte counts for people: always labelled, GB (1e9) and GiB (2^30) never mixed in one number. */
export function formatBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  const dec = ['kB', 'MB', 'GB', 'TB'];
  const bin = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = Math.min(3, Math.floor(Math.log10(n) / 3) - 1);
  const d = `${(n / 10 ** (3 * (i + 1))).toFixed(2)} ${dec[i]}`;
  i = Math.min(3, Math.max(0, Math.floor(Math.log2(n) / 10) - 1));
  const b = `${(n / 2 ** (10 * (i + 1))).toFixed(2)} ${bin[i]}`;
  return `${d} (${b})`;
}

/** Parses "500MB", "2GB", "1.5GiB", "1000000" into bytes. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]?|[bB])?\s*$/.exec(s);
  if (!m) throw new Error(`not a size: '${s}' (examples: 500MB, 2GB, 1GiB)`);
  const unit = (m[2] ?? 'B').toUpperCase().replace(/B$/, '');
  const pow: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, KI: 2 ** 10, MI: 2 ** 20, GI: 2 ** 30, TI: 2 ** 40 };
  const f = pow[unit];
  if (f === undefined) throw new Error(`unknown size unit in '${s}'`);
  return Math.round(Number(m[1]) * f);
}
