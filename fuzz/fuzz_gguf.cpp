// libFuzzer target for the GGUF reader: any input must either parse or throw fastkv::Error;
// a parsed file must support everything the engine does with it (metadata display, typed
// getters, tensor decoding) without reading outside the image. Any other exception, crash or
// sanitizer report is a bug. Run it with scripts/fuzz.sh (see docs/gguf.md).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/gguf.h"
#include "io/tensor_type.h"

namespace {

using namespace fastkv::gguf;

// Decoding is skipped for tensors above this many elements (keeps each run fast).
constexpr int64_t kMaxDecodeElements = int64_t{1} << 22;

template <typename F>
void guarded(F&& f) {
  try {
    f();
  } catch (const fastkv::Error&) {
  }
}

volatile size_t g_sink;  // defeats dead-code elimination

void exercise(const File& f) {
  size_t sink = f.version() + f.alignment() + f.data_offset() + f.file_size();
  for (const auto& kv : f.metadata()) {
    const std::string& key = kv.first;  // (clang 14 lambdas cannot capture structured bindings)
    const Value& v = kv.second;
    sink += to_string(v).size() + to_string(v, 1).size();
    sink += f.find(key) != nullptr;
    guarded([&] { sink += v.as_double() > 0; });
    guarded([&] { sink += static_cast<size_t>(v.as_int()); });
    // Every typed getter either returns or throws Error, whatever the value's type.
    guarded([&] { sink += f.get_string(key).size(); });
    guarded([&] { sink += static_cast<size_t>(f.get_int(key)); });
    guarded([&] { sink += f.get_float(key) > 0; });
    guarded([&] { sink += f.get_bool(key); });
    guarded([&] { sink += f.get_array(key).size(); });
    guarded([&] { sink += f.get_string_array(key).size(); });
    guarded([&] { sink += f.get_float_array(key).size(); });
    guarded([&] { sink += f.get_int_array(key).size(); });
  }
  for (const char* key : {"general.architecture", "tokenizer.ggml.tokens", "absent.key"}) {
    guarded([&] { sink += f.get_string(key, "x").size(); });
    guarded([&] { sink += static_cast<size_t>(f.get_int(key, 1)); });
  }

  for (const TensorInfo& t : f.tensors()) {
    sink += t.shape_string().size() + static_cast<size_t>(t.n_rows()) + t.name.size();
    sink += &f.tensor(t.name) == &t;  // names are unique
    // The whole tensor lies inside the image: touch its first and last byte.
    if (t.nbytes > 0) sink += t.data[0] + t.data[t.nbytes - 1];
    const TypeInfo* info = type_info(static_cast<uint32_t>(t.type));
    if (!info) __builtin_trap();  // the reader accepted an unknown type
    if (t.n_elements() > kMaxDecodeElements) continue;
    if (info->can_dequantize) {
      std::vector<float> values = f.read_f32(t);
      if (static_cast<int64_t>(values.size()) != t.n_elements()) __builtin_trap();
      for (float x : values) sink += x == x;  // reads every value (NaN is fine)
    } else if (t.type == TensorType::I32) {
      std::vector<int32_t> values = f.read_i32(t.name);
      if (static_cast<int64_t>(values.size()) != t.n_elements()) __builtin_trap();
    } else {
      guarded([&] { f.read_f32(t); });  // must refuse with an Error
    }
  }
  g_sink = sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    File f = File::from_bytes("fuzz.gguf", std::vector<uint8_t>(data, data + size));
    exercise(f);
  } catch (const fastkv::Error&) {
    // Rejected input: the expected outcome for most mutations.
  }
  return 0;
}
