// Conversions between GGUF tensor element types and f32.
//
// dequantize_row() decodes n elements (n a multiple of the type's block size) from the raw
// bytes of a GGUF tensor; quantize_row() encodes f32 into the types fastkv writes.
// Formats are those of the GGUF specification; docs/gguf.md describes each block layout.
#pragma once

#include <cstdint>
#include <vector>

#include "common/bf16.h"
#include "io/tensor_type.h"

namespace fastkv::gguf {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);    // round to nearest even, overflow to inf
// bf16 conversions live in common/bf16.h; named here too for readers of GGUF code.
using fastkv::bf16_to_f32;
using fastkv::f32_to_bf16;       // round to nearest even, NaN stays NaN

// Types with a dequantisation routine: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
// Q5_K, Q6_K, Q8_K. Throws fastkv::Error for any other type or a bad n.
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

// Types fastkv can write: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K (the
// quantised ones by plain round to nearest per block or sub-block, not llama-quantize's search
// for the best scales; quant.cpp states each rule and its error). Throws fastkv::Error for
// others.
bool can_quantize(TensorType type);
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);

// Encodes n floats into a freshly allocated byte vector of bytes_for(type, n) bytes.
std::vector<uint8_t> quantize(TensorType type, const float* src, int64_t n);

}  // namespace fastkv::gguf
