/**
 * The part of the ONNX protobuf schema quantkit writes and reads back (onnx.proto, IR version 10): the
 * model, its graph, nodes, attributes, value infos and tensors with external data. Field numbers are the
 * schema's; the messages are declared through protobufjs's reflection API, which encodes and decodes
 * them (no generated code, no .proto file to ship).
 */
import { createRequire } from 'node:module';
import type * as Protobuf from 'protobufjs/light.js';

/** TensorProto.DataType values quantkit uses. */
export const OnnxType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10, BFLOAT16: 16 } as const;
export type OnnxTypeId = (typeof OnnxType)[keyof typeof OnnxType];

/** Bytes per element of each tensor type. */
export const ONNX_TYPE_BYTES: Record<OnnxTypeId, number> = { 1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 10: 2, 16: 2 };

/** AttributeProto.AttributeType values quantkit uses. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

export interface StringEntry {
  key: string;
  value: string;
}

export interface TensorMessage {
  dims: number[];
  dataType: OnnxTypeId;
  name: string;
  rawData?: Uint8Array;
  externalData?: StringEntry[];
  /** 1 = EXTERNAL */
  dataLocation?: number;
}

export interface AttributeMessage {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}

export interface NodeMessage {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  domain?: string;
  attribute?: AttributeMessage[];
}

/** A dimension: a fixed size or a named (symbolic) one. */
export type Dim = number | string;

export interface ValueInfoMessage {
  name: string;
  type: { tensorType: { elemType: OnnxTypeId; shape: { dim: ({ dimValue: number } | { dimParam: string })[] } } };
}

export interface GraphMessage {
  name: string;
  node: NodeMessage[];
  initializer: TensorMessage[];
  input: ValueInfoMessage[];
  output: ValueInfoMessage[];
}

export interface ModelMessage {
  irVersion: number;
  opsetImport: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  graph: GraphMessage;
  metadataProps?: StringEntry[];
}

const f = (id: number, type: string, rule?: 'repeated') => ({ id, type, ...(rule ? { rule } : {}) });

// protobufjs loads on the first ONNX encode or decode, not with the CLI: most runs write no ONNX.
const schema = {
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: { fields: { key: f(1, 'string'), value: f(2, 'string') } },
        OperatorSetIdProto: { fields: { domain: f(1, 'string'), version: f(2, 'int64') } },
        TensorProto: {
          fields: {
            dims: f(1, 'int64', 'repeated'),
            dataType: f(2, 'int32'),
            name: f(8, 'string'),
            rawData: f(9, 'bytes'),
            docString: f(12, 'string'),
            externalData: f(13, 'StringStringEntryProto', 'repeated'),
            dataLocation: f(14, 'int32'),
          },
        },
        AttributeProto: {
          fields: {
            name: f(1, 'string'),
            f: f(2, 'float'),
            i: f(3, 'int64'),
            s: f(4, 'bytes'),
            t: f(5, 'TensorProto'),
            floats: f(7, 'float', 'repeated'),
            ints: f(8, 'int64', 'repeated'),
            strings: f(9, 'bytes', 'repeated'),
            type: f(20, 'int32'),
          },
        },
        NodeProto: {
          fields: {
            input: f(1, 'string', 'repeated'),
            output: f(2, 'string', 'repeated'),
            name: f(3, 'string'),
            opType: f(4, 'string'),
            attribute: f(5, 'AttributeProto', 'repeated'),
            docString: f(6, 'string'),
            domain: f(7, 'string'),
          },
        },
        TensorShapeProto: {
          fields: { dim: f(1, 'Dimension', 'repeated') },
          nested: { Dimension: { oneofs: { value: { oneof: ['dimValue', 'dimParam'] } }, fields: { dimValue: f(1, 'int64'), dimParam: f(2, 'string'), denotation: f(3, 'string') } } },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensorType'] } },
          fields: { tensorType: f(1, 'Tensor'), denotation: f(6, 'string') },
          nested: { Tensor: { fields: { elemType: f(1, 'int32'), shape: f(2, 'TensorShapeProto') } } },
        },
        ValueInfoProto: { fields: { name: f(1, 'string'), type: f(2, 'TypeProto'), docString: f(3, 'string') } },
        GraphProto: {
          fields: {
            node: f(1, 'NodeProto', 'repeated'),
            name: f(2, 'string'),
            initializer: f(5, 'TensorProto', 'repeated'),
            docString: f(10, 'string'),
            input: f(11, 'ValueInfoProto', 'repeated'),
            output: f(12, 'ValueInfoProto', 'repeated'),
            valueInfo: f(13, 'ValueInfoProto', 'repeated'),
          },
        },
        ModelProto: {
          fields: {
            irVersion: f(1, 'int64'),
            producerName: f(2, 'string'),
            producerVersion: f(3, 'string'),
            domain: f(4, 'string'),
            modelVersion: f(5, 'int64'),
            docString: f(6, 'string'),
            graph: f(7, 'GraphProto'),
            opsetImport: f(8, 'OperatorSetIdProto', 'repeated'),
            metadataProps: f(14, 'StringStringEntryProto', 'repeated'),
          },
        },
      },
    },
  },
};

let modelProto: Protobuf.Type | undefined;
function ModelProtoType(): Protobuf.Type {
  if (!modelProto) {
    const protobuf = createRequire(import.meta.url)('protobufjs/light.js') as typeof Protobuf;
    modelProto = protobuf.Root.fromJSON(schema).lookupType('onnx.ModelProto');
  }
  return modelProto;
}

/** Serializes a model (deterministically: the same message gives the same bytes). */
export function encodeModel(m: ModelMessage): Uint8Array {
  const ModelProto = ModelProtoType();
  return ModelProto.encode(ModelProto.fromObject(m)).finish();
}

/** Parses a serialized model; throws a protobufjs error on malformed bytes. */
export function decodeModel(bytes: Uint8Array): ModelMessage {
  const ModelProto = ModelProtoType();
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: false, arrays: true }) as ModelMessage;
}

/** A value info: a tensor of `type` whose dimensions are fixed sizes or names. */
export function valueInfo(name: string, elemType: OnnxTypeId, dims: Dim[]): ValueInfoMessage {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}
