/**
 * `quantkit report` lists ONNX rows beside GGUF and safetensors: bytes and bits/weight from the plan,
 * perplexity from quantkit's evaluator and, on the files written, from ONNX Runtime.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { report } from '../../src/report/index.js';
import { STORIES260K, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-onnx-report-');

describe('report with ONNX rows', () => {
  it('measures ONNX variants through ONNX Runtime on the weights the sweep evaluated', async () => {
    const { output, report: r } = await report(STORIES260K, { bits: [4, 8], groupSizes: [32], modes: ['asym'], methods: ['rtn'], formats: ['gguf', 'onnx'], maxTokens: 96, output: join(dir, 'r'), threads: 2 });
    expect(r.variants.map((v) => v.label)).toEqual(['gguf int4 g32 asym rtn', 'onnx int4 g32 asym rtn', 'onnx int8 g32 asym rtn']);
    expect(r.skipped.map((s) => s.label)).toEqual(['gguf int8 g32 asym rtn']);
    for (const v of r.variants.filter((x) => x.format === 'onnx')) {
      expect(Math.abs(v.onnxruntime!.perplexity - v.model!.perplexity) / v.model!.perplexity).toBeLessThan(0.005);
      expect(v.packed_bytes).toBeGreaterThan(0);
    }
    expect(r.variants[0]!.onnxruntime).toBeUndefined();
    const md = await readFile(join(output, 'report.md'), 'utf8');
    expect(md).toContain('perplexity (ONNX Runtime)');
    expect(md).toMatch(/\| onnx int4 g32 asym rtn \| [\d.]+ \| [\d.]+ MiB \|/);
  }, 60_000);
});
