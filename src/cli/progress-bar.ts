/** A one-line progress bar on stderr, drawn only when stderr is a terminal. */
import type { Progress } from '../quantize.js';
import { formatBytes } from '../units.js';

export function progressBar(stream: NodeJS.WriteStream = process.stderr): { update(p: Progress): void; done(): void } {
  if (!stream.isTTY) return { update() {}, done() {} };
  let last = 0;
  let started = Date.now();
  let phase = '';
  return {
    update(p) {
      const now = Date.now();
      if (p.phase !== phase) {
        phase = p.phase; // each phase has its own rate
        started = now;
      }
      if (now - last < 100 && p.done !== p.total) return;
      last = now;
      const byBytes = p.phase !== 'verify';
      const frac = byBytes ? p.bytesDone / Math.max(1, p.bytesTotal) : p.done / Math.max(1, p.total);
      const width = 24;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      const rate = p.bytesDone / Math.max(1e-3, (now - started) / 1000);
      const name = p.tensor.length > 40 ? `…${p.tensor.slice(-39)}` : p.tensor;
      const eta = byBytes && rate > 0 && p.bytesDone < p.bytesTotal ? ` ETA ${Math.ceil((p.bytesTotal - p.bytesDone) / rate)} s` : '';
      stream.write(`\r\x1b[2K${p.phase.padEnd(8)} [${bar}] ${p.done}/${p.total} ${formatBytes(Math.round(rate))}/s${eta} ${name}`);
    },
    done() {
      stream.write('\r\x1b[2K');
    },
  };
}
