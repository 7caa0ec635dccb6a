/**
 * The weights an ONNX folder holds, as f32 in Hugging Face orientation: quantized weights dequantized by
 * the kernels (padding dropped), kept ones converted. The reference forward pass run on these computes
 * with exactly what ONNX Runtime reads, so the two can be compared on the same quantized weights.
 */
import { join } from 'node:path';
import type { Checkpoint } from '../../checkpoint.js';
import { toFloat32 } from '../../convert.js';
import { addon } from '../../native.js';
import { unpadRows } from '../../quant/row-padding.js';
import { ONNX_DIR } from './onnx-format.js';
import { readBackOnnx } from './read-back.js';

/** f32 values by checkpoint tensor name (`source` gives the row lengths padding is dropped to). */
export async function writtenValues(dir: string, source: Checkpoint, threads = 1): Promise<Map<string, Float32Array>> {
  const rb = await readBackOnnx(join(dir, ONNX_DIR));
  try {
    const out = new Map<string, Float32Array>();
    for (const t of rb.tensors) {
      if (t.kind === 'keep') {
        out.set(t.name, toFloat32(await t.readRange(0, new Uint8Array(t.bytes)), t.dtype));
        continue;
      }
      const { rows, cols } = t.view;
      const values = new Float32Array(rows * cols);
      await addon().dequantize({ spec: t.spec, rows, cols, parts: await t.load(), out: values, threads });
      out.set(t.name, unpadRows(values, rows, cols, source.tensor(t.name)?.shape[1] ?? cols));
    }
    return out;
  } finally {
    await rb.close();
  }
}
