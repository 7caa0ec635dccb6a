/** Deterministic bf16 test data for the benchmarks: uniform ±0.02 with a 10x outlier every 997 values. */
export function randomBf16(n: number): Uint8Array {
  const out = new Uint16Array(n);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    f[0] = (s / 2 ** 32 - 0.5) * 0.04 * (i % 997 === 0 ? 10 : 1);
    out[i] = u[0]! >>> 16;
  }
  return new Uint8Array(out.buffer);
}
