#include "io/tensor_type.h"

#include "common/error.h"

namespace fastkv::gguf {
namespace {

struct Entry {
  uint32_t id;
  TypeInfo info;
};

// Sizes follow the GGUF specification's block layouts (see docs/gguf.md).
constexpr Entry kTypes[] = {
    {0, {"F32", 1, 4, true}},          {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 18, true}},       {3, {"Q4_1", 32, 20, true}},
    {6, {"Q5_0", 32, 22, true}},       {7, {"Q5_1", 32, 24, true}},
    {8, {"Q8_0", 32, 34, true}},       {9, {"Q8_1", 32, 36, false}},
    {10, {"Q2_K", 256, 84, false}},    {11, {"Q3_K", 256, 110, false}},
    {12, {"Q4_K", 256, 144, true}},    {13, {"Q5_K", 256, 176, true}},
    {14, {"Q6_K", 256, 210, true}},    {15, {"Q8_K", 256, 292, true}},
    {16, {"IQ2_XXS", 256, 66, false}}, {17, {"IQ2_XS", 256, 74, false}},
    {18, {"IQ3_XXS", 256, 98, false}}, {19, {"IQ1_S", 256, 50, false}},
    {20, {"IQ4_NL", 32, 18, false}},   {21, {"IQ3_S", 256, 110, false}},
    {22, {"IQ2_S", 256, 82, false}},   {23, {"IQ4_XS", 256, 136, false}},
    {24, {"I8", 1, 1, false}},         {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},        {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},        {29, {"IQ1_M", 256, 56, false}},
    {30, {"BF16", 1, 2, true}},
};

}  // namespace

const TypeInfo* type_info(uint32_t type_id) {
  for (const Entry& e : kTypes) {
    if (e.id == type_id) return &e.info;
  }
  return nullptr;
}

std::string type_name(TensorType type) {
  const TypeInfo* info = type_info(static_cast<uint32_t>(type));
  return info ? std::string(info->name) : cat("type", static_cast<uint32_t>(type));
}

uint64_t bytes_for(TensorType type, int64_t n) {
  const TypeInfo* info = type_info(static_cast<uint32_t>(type));
  if (!info) fail("unknown tensor type ", static_cast<uint32_t>(type));
  if (n < 0 || n % info->block_size != 0) {
    fail("tensor type ", info->name, " needs a multiple of ", info->block_size,
         " elements, got ", n);
  }
  return static_cast<uint64_t>(n / info->block_size) * info->block_bytes;
}

}  // namespace fastkv::gguf
