// GGUF/ggml tensor element types: ids, block sizes and byte sizes.
//
// A quantised type stores `block_size` consecutive elements of a row in `block_bytes` bytes;
// a row of n elements (n a multiple of block_size) takes n / block_size * block_bytes bytes.
// The ids are the file format's (ggml's enum), so they must never be renumbered.
#pragma once

#include <cstdint>
#include <string>

namespace fastkv::gguf {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
};

struct TypeInfo {
  const char* name;      // "Q4_K"
  uint32_t block_size;   // elements per block
  uint32_t block_bytes;  // bytes per block
  bool can_dequantize;   // fastkv has a dequantisation routine to f32 for it
};

// Layout facts for a type id read from a file; nullptr when the id is not a known ggml type.
const TypeInfo* type_info(uint32_t type_id);

// The type's name ("Q4_K"), or "type<id>" for unknown ids.
std::string type_name(TensorType type);

// Bytes used by n elements of `type`. Throws fastkv::Error when the type is unknown or n is not
// a multiple of its block size.
uint64_t bytes_for(TensorType type, int64_t n);

}  // namespace fastkv::gguf
