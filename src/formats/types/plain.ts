/**
 * ggml's element types: values stored as they are, one per element (blck_size 1). F32, F16 and BF16
 * hold kept and converted weights (norms are F32, as llama.cpp expects of 1-D tensors); the integer and
 * F64 types hold integer tensors a checkpoint carries (GGUF-raw). Type ids from ggml.h's enum ggml_type.
 */
import { ggmlElementType } from './encoding.js';

export const F32 = ggmlElementType('F32', 0, 'F32', '32-bit IEEE float');
export const F16 = ggmlElementType('F16', 1, 'F16', '16-bit IEEE float');
export const BF16 = ggmlElementType('BF16', 30, 'BF16', 'bfloat16');
export const F64 = ggmlElementType('F64', 28, 'F64', '64-bit IEEE float');
export const I8 = ggmlElementType('I8', 24, 'I8', '8-bit integer');
export const I16 = ggmlElementType('I16', 25, 'I16', '16-bit integer');
export const I32 = ggmlElementType('I32', 26, 'I32', '32-bit integer');
export const I64 = ggmlElementType('I64', 27, 'I64', '64-bit integer');
