/**
 * Reads an ONNX folder back for `verify`: the .onnx graph, and each weight's bytes from the external
 * data file it names. A MatMulNBits (or, for an embedding alone, GatherBlockQuantized) weight comes back
 * as the kernel's parts (codes, scales, signed zero points) with its block layout, so verify dequantizes
 * it with the same kernels and compares it with the source; kept tensors come back as they are stored.
 * Names follow onnx-model.ts: `<checkpoint name>` for kept tensors, `<name>.qweight/.scales/.zero_points`
 * for quantized ones; `<name>.gather.*` views and generated tensors ('/...') are not checkpoint tensors.
 */
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { QuantkitError, ioError } from '../../errors.js';
import type { KernelSpec, QuantizedParts } from '../../native.js';
import type { Dtype, FloatDtype } from '../../safetensors/dtypes.js';
import type { ReadBack, ReadBackTensor } from '../format.js';
import { encodingLabel, unpackZeroPoints } from './matmul-nbits.js';
import { type ModelMessage, type NodeMessage, OnnxType, type TensorMessage, decodeModel } from './proto.js';

const DTYPES: Partial<Record<number, Dtype>> = { [OnnxType.FLOAT]: 'F32', [OnnxType.FLOAT16]: 'F16', [OnnxType.BFLOAT16]: 'BF16', [OnnxType.UINT8]: 'U8', [OnnxType.INT64]: 'I64' };

/** Where an initializer's bytes are: inline, or a range of an external file. */
interface Located {
  tensor: TensorMessage;
  file?: string;
  offset: number;
  length: number;
}

export async function readOnnxModel(file: string): Promise<ModelMessage> {
  const bytes = await readFile(file).catch((e) => {
    throw ioError('ERR_VERIFY', file, e, 'cannot read');
  });
  try {
    return decodeModel(bytes);
  } catch (e) {
    throw new QuantkitError('ERR_VERIFY', `not an ONNX model (${(e as Error).message})`, { file });
  }
}

export async function readBackOnnx(dir: string): Promise<ReadBack> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.onnx'));
  if (names.length !== 1) throw new QuantkitError('ERR_VERIFY', `expected one .onnx file, found ${names.length}`, { file: dir });
  const file = join(dir, names[0]!);
  const model = await readOnnxModel(file);
  const fail = (m: string, tensor?: string) => new QuantkitError('ERR_VERIFY', m, { file, ...(tensor ? { tensor } : {}) });
  const located = new Map<string, Located>();
  for (const t of model.graph?.initializer ?? []) {
    const ext = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
    if (t.dataLocation !== 1) {
      located.set(t.name, { tensor: t, offset: 0, length: t.rawData?.length ?? 0 });
      continue;
    }
    const location = ext.get('location');
    if (!location || location !== basename(location)) throw fail(`external data location '${location}' is not a file beside the model`, t.name);
    located.set(t.name, { tensor: t, file: join(dir, location), offset: Number(ext.get('offset') ?? 0), length: Number(ext.get('length') ?? NaN) });
  }
  // One handle per data file, opened on first use (loads run concurrently: the promise is what is shared).
  const handles = new Map<string, Promise<{ h: FileHandle; size: number }>>();
  const range = async (l: Located, offset: number, target: Uint8Array): Promise<Uint8Array> => {
    if (!l.file) {
      target.set(l.tensor.rawData?.subarray(offset, offset + target.length) ?? []);
      return target;
    }
    const path = l.file;
    let opened = handles.get(path);
    if (!opened) {
      opened = open(path, 'r').then(async (h) => ({ h, size: (await h.stat()).size }), (e) => {
        throw ioError('ERR_VERIFY', path, e, 'cannot open');
      });
      handles.set(path, opened);
    }
    const { h, size } = await opened;
    if (!(Number.isSafeInteger(l.length) && l.offset >= 0 && l.offset + l.length <= size)) throw fail(`external data range ${l.offset}+${l.length} is outside ${basename(path)}`, l.tensor.name);
    let done = 0;
    while (done < target.length) {
      const { bytesRead } = await h.read(target, done, target.length - done, l.offset + offset + done);
      if (bytesRead === 0) throw fail('external data ends early', l.tensor.name);
      done += bytesRead;
    }
    return target;
  };
  const get = (name: string | undefined, tensor: string): Located => {
    const l = name ? located.get(name) : undefined;
    if (!l) throw fail(`no initializer '${name}'`, tensor);
    return l;
  };
  const read = (l: Located, alloc?: (n: number) => Uint8Array) => range(l, 0, alloc ? alloc(l.length) : new Uint8Array(l.length));

  const quantizers = new Map<string, NodeMessage>();
  for (const n of model.graph?.node ?? []) {
    if (n.opType === 'MatMulNBits') quantizers.set(n.input[1]!, n);
    else if (n.opType === 'GatherBlockQuantized') quantizers.set(n.input[0]!, n);
  }
  const attr = (n: NodeMessage, name: string): number | undefined => n.attribute?.find((a) => a.name === name)?.i;

  const tensors: ReadBackTensor[] = [];
  for (const [name, l] of located) {
    if (name.startsWith('/') || /\.gather\.[a-z_]+$/.test(name) || /\.(scales|zero_points)$/.test(name)) continue;
    const q = /^(.*)\.qweight$/.exec(name);
    if (!q) {
      const dtype = DTYPES[l.tensor.dataType];
      if (!dtype) throw fail(`initializer type ${l.tensor.dataType} is not a weight type`, name);
      tensors.push({ name, kind: 'keep', dtype, shape: l.tensor.dims ?? [], bytes: l.length, readRange: (o, target) => range(l, o, target) });
      continue;
    }
    const source = q[1]!;
    const node = quantizers.get(name);
    if (!node) throw fail('no MatMulNBits or GatherBlockQuantized node reads it', name);
    const gather = node.opType === 'GatherBlockQuantized';
    const [scalesName, zpName] = [node.input[2], node.input[3]];
    const scales = get(scalesName, source);
    const zp = zpName ? get(zpName, source) : undefined;
    const bits = attr(node, 'bits') ?? 4;
    const block = attr(node, 'block_size') ?? 0;
    const rows = l.tensor.dims[0] ?? 0;
    const scaleDtype = DTYPES[scales.tensor.dataType];
    if ((bits !== 4 && bits !== 8) || !block || !scaleDtype || scaleDtype === 'U8' || scaleDtype === 'I64') throw fail(`unsupported ${node.opType} (bits ${bits}, block ${block})`, source);
    const groups = scales.tensor.dims[1] ?? 0;
    const cols = groups * block;
    const k = gather ? cols : attr(node, 'K') ?? 0;
    if (l.length !== (rows * cols * bits) / 8 || scales.tensor.dims[0] !== rows || k > cols || k <= cols - block)
      throw fail(`${node.opType} shapes do not agree (K ${k}, ${rows} rows, ${groups} blocks of ${block})`, source);
    const spec: KernelSpec = { scheme: zp ? 'int_asym' : 'int_sym', bits, group: block, scaleDtype: scaleDtype as FloatDtype };
    tensors.push({
      name: source,
      kind: 'quantize',
      spec,
      view: { rows, cols },
      label: encodingLabel(gather ? 'GatherBlockQuantized' : 'MatMulNBits', spec),
      bytes: l.length + scales.length + (zp?.length ?? 0),
      ...(k !== cols ? { transform: { kind: 'pad-rows' as const, cols } } : {}),
      load: async (alloc): Promise<QuantizedParts> => ({
        data: await read(l, alloc),
        scales: await read(scales, alloc),
        ...(zp ? { zeros: unpackZeroPoints(await read(zp), rows, groups, bits) } : {}),
      }),
    });
  }
  return {
    format: 'onnx',
    tensors,
    close: async () => {
      for (const opened of handles.values()) await opened.then(({ h }) => h.close()).catch(() => undefined);
    },
  };
}
