// GGUF reader/writer: round trips of every metadata type, versions 2 and 3, alignment, tensor
// tables, and rejection of malformed files with one-line messages naming the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/gguf.h"
#include "io/quant.h"
#include "io/tensor_type.h"
#include "test_util.h"

namespace fastkv::gguf {
namespace {

namespace fs = std::filesystem;

// ---- Helpers ----------------------------------------------------------------------------------

// Little-endian byte writer for hand-made (usually malformed) GGUF images.
class Image {
 public:
  std::vector<uint8_t> bytes;

  Image& le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) bytes.push_back(static_cast<uint8_t>(v >> (8 * k)));
    return *this;
  }
  Image& u8(uint8_t v) { return le(v, 1); }
  Image& u32(uint32_t v) { return le(v, 4); }
  Image& i32(int32_t v) { return le(static_cast<uint32_t>(v), 4); }
  Image& u64(uint64_t v) { return le(v, 8); }
  Image& f32(float v) { return le(std::bit_cast<uint32_t>(v), 4); }
  Image& raw(const std::string& s) {
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  Image& str(const std::string& s) { return u64(s.size()).raw(s); }
  Image& zeros(size_t n) {
    bytes.resize(bytes.size() + n, 0);
    return *this;
  }
  Image& pad(uint64_t alignment) {
    while (bytes.size() % alignment) bytes.push_back(0);
    return *this;
  }

  Image& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  Image& kv_u32(const std::string& key, uint32_t v) {
    return str(key).u32(static_cast<uint32_t>(ValueType::UINT32)).u32(v);
  }
  Image& kv_string(const std::string& key, const std::string& v) {
    return str(key).u32(static_cast<uint32_t>(ValueType::STRING)).str(v);
  }
  Image& tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type,
                uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
};

constexpr const char* kName = "bad-model.gguf";

// Parses `bytes` and returns the Error message; records a failure when it parses.
std::string parse_error(const std::vector<uint8_t>& bytes, const std::string& name = kName) {
  try {
    File::from_bytes(name, bytes);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected fastkv::Error for " << name;
  return "";
}

// Asserts that parsing `bytes` throws a one-line fastkv::Error naming the file and containing
// every one of `parts`.
#define EXPECT_GGUF_ERROR(bytes, ...)                                                         \
  do {                                                                                        \
    std::string msg_ = parse_error(bytes);                                                    \
    EXPECT_EQ(msg_.rfind(std::string(kName) + ": ", 0), 0u) << msg_;                          \
    EXPECT_EQ(msg_.find('\n'), std::string::npos) << msg_;                                    \
    for (const std::string& part_ : std::vector<std::string>{__VA_ARGS__}) {                  \
      EXPECT_NE(msg_.find(part_), std::string::npos) << "'" << part_ << "' not in: " << msg_; \
    }                                                                                         \
  } while (0)

// Runs `f`, expecting a fastkv::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected fastkv::Error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const std::string& p : parts) {
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    }
  }
}

File round_trip(const Writer& w, const std::string& name = "rt.gguf") {
  return File::from_bytes(name, w.to_bytes());
}

std::vector<float> ramp(size_t n, float scale = 1.0f) {
  std::vector<float> v(n);
  for (size_t k = 0; k < n; ++k) {
    v[k] = scale * std::sin(0.37f * static_cast<float>(k) + 0.1f) *
           (1.0f + 0.5f * std::cos(0.05f * static_cast<float>(k)));
  }
  return v;
}

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// ---- Metadata round trips --------------------------------------------------------------------

TEST(GgufMetadata, EveryScalarTypeRoundTrips) {
  Writer w;
  w.set("u8", Value::of_u8(255));
  w.set("u8.zero", Value::of_u8(0));
  w.set("i8", Value::of_i8(-128));
  w.set("u16", Value::of_u16(65535));
  w.set("i16", Value::of_i16(-32768));
  w.set("u32", Value::of_u32(4294967295u));
  w.set("i32", Value::of_i32(std::numeric_limits<int32_t>::min()));
  w.set("u64", Value::of_u64(std::numeric_limits<uint64_t>::max()));
  w.set("i64", Value::of_i64(std::numeric_limits<int64_t>::min()));
  w.set("f32", Value::of_f32(1.5e-5f));
  w.set("f32.inf", Value::of_f32(-std::numeric_limits<float>::infinity()));
  w.set("f64", Value::of_f64(3.141592653589793));
  w.set("bool.t", Value::of_bool(true));
  w.set("bool.f", Value::of_bool(false));
  w.set("str", Value::of_string("héllo ▁world"));
  w.set("str.empty", Value::of_string(""));
  w.set("str.nul", Value::of_string(std::string("a\0b", 3)));
  File f = round_trip(w);

  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  ASSERT_EQ(f.metadata().size(), 17u);
  // File order is insertion order.
  EXPECT_EQ(f.metadata()[0].first, "u8");
  EXPECT_EQ(f.metadata()[16].first, "str.nul");

  EXPECT_EQ(f.find("u8")->type, ValueType::UINT8);
  EXPECT_EQ(f.find("u8")->u, 255u);
  EXPECT_EQ(f.find("u8.zero")->u, 0u);
  EXPECT_EQ(f.find("i8")->type, ValueType::INT8);
  EXPECT_EQ(f.find("i8")->i, -128);
  EXPECT_EQ(f.find("u16")->type, ValueType::UINT16);
  EXPECT_EQ(f.find("u16")->u, 65535u);
  EXPECT_EQ(f.find("i16")->type, ValueType::INT16);
  EXPECT_EQ(f.find("i16")->i, -32768);
  EXPECT_EQ(f.find("u32")->type, ValueType::UINT32);
  EXPECT_EQ(f.find("u32")->u, 4294967295u);
  EXPECT_EQ(f.find("i32")->type, ValueType::INT32);
  EXPECT_EQ(f.find("i32")->i, std::numeric_limits<int32_t>::min());
  EXPECT_EQ(f.find("u64")->type, ValueType::UINT64);
  EXPECT_EQ(f.find("u64")->u, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.find("i64")->type, ValueType::INT64);
  EXPECT_EQ(f.find("i64")->i, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.find("f32")->type, ValueType::FLOAT32);
  EXPECT_EQ(f.find("f32")->f, static_cast<double>(1.5e-5f));  // exact: stored as f32
  EXPECT_TRUE(std::isinf(f.find("f32.inf")->f));
  EXPECT_EQ(f.find("f64")->type, ValueType::FLOAT64);
  EXPECT_EQ(f.find("f64")->f, 3.141592653589793);
  EXPECT_EQ(f.find("bool.t")->type, ValueType::BOOL);
  EXPECT_TRUE(f.find("bool.t")->b);
  EXPECT_FALSE(f.find("bool.f")->b);
  EXPECT_EQ(f.find("str")->type, ValueType::STRING);
  EXPECT_EQ(f.find("str")->str, "héllo ▁world");
  EXPECT_EQ(f.find("str.empty")->str, "");
  EXPECT_EQ(f.find("str.nul")->str, std::string("a\0b", 3));
  EXPECT_EQ(f.find("absent"), nullptr);
  EXPECT_FALSE(f.has("absent"));
  EXPECT_TRUE(f.has("u8"));

  // Typed getters.
  EXPECT_EQ(f.get_int("u8"), 255);
  EXPECT_EQ(f.get_int("i16"), -32768);
  EXPECT_EQ(f.get_int("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.get_int("absent", 42), 42);
  EXPECT_DOUBLE_EQ(f.get_float("f64"), 3.141592653589793);
  EXPECT_DOUBLE_EQ(f.get_float("u32"), 4294967295.0);  // integers are numbers too
  EXPECT_DOUBLE_EQ(f.get_float("absent", 0.25), 0.25);
  EXPECT_TRUE(f.get_bool("bool.t"));
  EXPECT_TRUE(f.get_bool("absent", true));
  EXPECT_EQ(f.get_string("str"), "héllo ▁world");
  EXPECT_EQ(f.get_string("absent", "fallback"), "fallback");

  // Display.
  EXPECT_EQ(to_string(*f.find("u8")), "255");
  EXPECT_EQ(to_string(*f.find("i8")), "-128");
  EXPECT_EQ(to_string(*f.find("u64")), "18446744073709551615");
  EXPECT_EQ(to_string(*f.find("bool.f")), "false");
  EXPECT_EQ(to_string(*f.find("str")), "\"héllo ▁world\"");
  EXPECT_EQ(to_string(*f.find("f64")), "3.14159");
}

TEST(GgufMetadata, ArraysRoundTripIncludingNestedAndEmpty) {
  Writer w;
  w.set_string_array("strings", {"<unk>", "", "▁the", std::string(100, 'x')});
  w.set_f32_array("floats", {0.0f, -1.25f, 1e30f});
  w.set_i32_array("ints", {1, -2, std::numeric_limits<int32_t>::max()});
  w.set("u8s", Value::of_array(ValueType::UINT8, {Value::of_u8(0), Value::of_u8(255)}));
  w.set("i8s", Value::of_array(ValueType::INT8, {Value::of_i8(-1)}));
  w.set("u16s", Value::of_array(ValueType::UINT16, {Value::of_u16(7)}));
  w.set("i16s", Value::of_array(ValueType::INT16, {Value::of_i16(-7)}));
  w.set("u32s", Value::of_array(ValueType::UINT32, {Value::of_u32(1), Value::of_u32(2)}));
  w.set("u64s", Value::of_array(ValueType::UINT64, {Value::of_u64(1ull << 40)}));
  w.set("i64s", Value::of_array(ValueType::INT64, {Value::of_i64(-(1ll << 40))}));
  w.set("f64s", Value::of_array(ValueType::FLOAT64, {Value::of_f64(0.5), Value::of_f64(-2)}));
  w.set("bools", Value::of_array(ValueType::BOOL, {Value::of_bool(true), Value::of_bool(false)}));
  w.set("empty.u32", Value::of_array(ValueType::UINT32, {}));
  w.set("empty.str", Value::of_array(ValueType::STRING, {}));
  w.set("empty.arr", Value::of_array(ValueType::ARRAY, {}));
  // An array of arrays (of different lengths, one empty) and an array of arrays of strings.
  w.set("nested",
        Value::of_array(ValueType::ARRAY,
                        {Value::of_array(ValueType::INT32, {Value::of_i32(1), Value::of_i32(2)}),
                         Value::of_array(ValueType::INT32, {}),
                         Value::of_array(ValueType::FLOAT32, {Value::of_f32(0.5f)})}));
  w.set("nested.str",
        Value::of_array(
            ValueType::ARRAY,
            {Value::of_array(ValueType::STRING, {Value::of_string("a b")}),
             Value::of_array(ValueType::STRING, {Value::of_string("c"), Value::of_string("")})}));
  // Three levels deep.
  w.set("deep",
        Value::of_array(ValueType::ARRAY,
                        {Value::of_array(ValueType::ARRAY,
                                         {Value::of_array(ValueType::UINT8, {Value::of_u8(9)})})}));
  File f = round_trip(w);

  EXPECT_EQ(f.get_string_array("strings"),
            (std::vector<std::string>{"<unk>", "", "▁the", std::string(100, 'x')}));
  EXPECT_EQ(f.get_float_array("floats"), (std::vector<double>{0.0, -1.25, double(1e30f)}));
  EXPECT_EQ(f.get_int_array("ints"),
            (std::vector<int64_t>{1, -2, std::numeric_limits<int32_t>::max()}));
  EXPECT_EQ(f.get_int_array("u8s"), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(f.get_int_array("i8s"), (std::vector<int64_t>{-1}));
  EXPECT_EQ(f.get_int_array("u16s"), (std::vector<int64_t>{7}));
  EXPECT_EQ(f.get_int_array("i16s"), (std::vector<int64_t>{-7}));
  EXPECT_EQ(f.get_int_array("u32s"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(f.get_int_array("u64s"), (std::vector<int64_t>{1ll << 40}));
  EXPECT_EQ(f.get_int_array("i64s"), (std::vector<int64_t>{-(1ll << 40)}));
  EXPECT_EQ(f.get_float_array("f64s"), (std::vector<double>{0.5, -2.0}));
  const auto& bools = f.get_array("bools");
  ASSERT_EQ(bools.size(), 2u);
  EXPECT_EQ(bools[0].type, ValueType::BOOL);
  EXPECT_TRUE(bools[0].b);
  EXPECT_FALSE(bools[1].b);

  EXPECT_TRUE(f.get_array("empty.u32").empty());
  EXPECT_EQ(f.find("empty.u32")->elem_type, ValueType::UINT32);
  EXPECT_TRUE(f.get_string_array("empty.str").empty());
  EXPECT_TRUE(f.get_int_array("empty.u32").empty());
  EXPECT_TRUE(f.get_array("empty.arr").empty());
  EXPECT_EQ(f.find("empty.arr")->elem_type, ValueType::ARRAY);

  const Value& nested = *f.find("nested");
  EXPECT_EQ(nested.type, ValueType::ARRAY);
  EXPECT_EQ(nested.elem_type, ValueType::ARRAY);
  ASSERT_EQ(nested.arr.size(), 3u);
  EXPECT_EQ(nested.arr[0].elem_type, ValueType::INT32);
  ASSERT_EQ(nested.arr[0].arr.size(), 2u);
  EXPECT_EQ(nested.arr[0].arr[1].i, 2);
  EXPECT_TRUE(nested.arr[1].arr.empty());
  EXPECT_EQ(nested.arr[2].elem_type, ValueType::FLOAT32);
  EXPECT_EQ(nested.arr[2].arr[0].f, 0.5);

  const Value& nstr = *f.find("nested.str");
  ASSERT_EQ(nstr.arr.size(), 2u);
  EXPECT_EQ(nstr.arr[0].arr[0].str, "a b");
  ASSERT_EQ(nstr.arr[1].arr.size(), 2u);
  EXPECT_EQ(nstr.arr[1].arr[0].str, "c");
  EXPECT_EQ(nstr.arr[1].arr[1].str, "");

  const Value& deep = *f.find("deep");
  EXPECT_EQ(deep.arr[0].arr[0].arr[0].u, 9u);

  // Display of arrays: element type, count, the first elements.
  EXPECT_EQ(to_string(*f.find("u32s")), "u32[2] [1, 2]");
  EXPECT_EQ(to_string(*f.find("empty.str")), "string[0] []");
  EXPECT_EQ(to_string(*f.find("nested")), "array[3] [i32[2] [1, 2], i32[0] [], f32[1] [0.5]]");
  EXPECT_EQ(to_string(*f.find("strings"), 2), "string[4] [\"<unk>\", \"\", ...]");
}

// A model drops the tokenizer's arrays once it has read them (Model::load): the long arrays
// go, short ones and scalars stay readable, and reading a dropped key is a clear error.
TEST(GgufMetadata, DroppedArraysAreAnErrorToReadNotAnEmptyAnswer) {
  Writer w;
  std::vector<std::string> vocab;
  for (int i = 0; i < 5000; ++i) vocab.push_back("tok" + std::to_string(i));
  w.set_string_array("tokenizer.ggml.tokens", vocab);
  w.set_i32_array("per_layer", {1, 2, 3});
  w.set_string("tokenizer.chat_template", "{{ x }}");
  File f = round_trip(w);
  ASSERT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 5000u);
  f.drop_arrays(4096);
  EXPECT_EQ(f.get_int_array("per_layer"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(f.get_string("tokenizer.chat_template"), "{{ x }}");
  EXPECT_FALSE(f.has("absent"));
  try {
    f.get_string_array("tokenizer.ggml.tokens");
    ADD_FAILURE() << "a dropped array was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'tokenizer.ggml.tokens'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.has("tokenizer.ggml.tokens"), Error);
  ASSERT_EQ(f.metadata().size(), 3u);  // the key is still listed, its elements are gone
  EXPECT_TRUE(f.metadata()[0].second.arr.empty());
}

TEST(GgufMetadata, SetReplacesAKeyInPlace) {
  Writer w;
  w.set_u32("a", 1);
  w.set_string("b", "x");
  w.set_string("a", "replaced");
  File f = round_trip(w);
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata()[0].first, "a");
  EXPECT_EQ(f.get_string("a"), "replaced");
  EXPECT_EQ(f.get_string("b"), "x");
}

TEST(GgufMetadata, EmptyFileHasNoKeysAndNoTensors) {
  Writer w;
  std::vector<uint8_t> bytes = w.to_bytes();
  EXPECT_EQ(bytes.size(), 32u);  // 24-byte header padded to the 32-byte alignment
  File f = File::from_bytes("empty.gguf", bytes);
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.path(), "empty.gguf");
  EXPECT_EQ(f.file_size(), 32u);
  // The bare 24-byte header is a valid file too.
  bytes.resize(24);
  EXPECT_TRUE(File::from_bytes("header.gguf", bytes).tensors().empty());
}

// ---- Versions and alignment ------------------------------------------------------------------

TEST(GgufVersion, ReadsVersion2AndVersion3) {
  Writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 5);
  std::vector<float> vals = ramp(64);
  w.add_f32("t", TensorType::F32, {64}, vals.data());
  std::vector<uint8_t> v3 = w.to_bytes();
  ASSERT_EQ(v3[4], 3);  // the writer writes version 3

  std::vector<uint8_t> v2 = v3;
  v2[4] = 2;
  for (const auto& [bytes, version] : {std::pair{v3, uint32_t{3}}, std::pair{v2, uint32_t{2}}}) {
    File f = File::from_bytes("v.gguf", bytes);
    EXPECT_EQ(f.version(), version);
    EXPECT_EQ(f.get_string("general.architecture"), "llama");
    EXPECT_EQ(f.get_int("llama.block_count"), 5);
    EXPECT_EQ(f.read_f32("t"), vals);
  }
}

TEST(GgufAlignment, NonDefaultAlignmentIsHonoured) {
  for (uint32_t alignment : {1u, 8u, 64u, 256u}) {
    SCOPED_TRACE(alignment);
    Writer w(alignment);
    w.set_string("x", "abc");  // makes the header length odd
    std::vector<float> a = ramp(3), b = ramp(5, 2.0f), c = ramp(7, -1.0f);
    w.add_f32("a", TensorType::F32, {3}, a.data());
    w.add_f32("b", TensorType::F32, {5}, b.data());
    w.add_f32("c", TensorType::F32, {7}, c.data());
    File f = round_trip(w);
    EXPECT_EQ(f.alignment(), alignment);
    if (alignment != 32) {
      EXPECT_EQ(f.get_int("general.alignment"), int64_t{alignment});
    }
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    ASSERT_EQ(f.tensors().size(), 3u);
    uint64_t expect_offset = 0;
    for (const TensorInfo& t : f.tensors()) {
      EXPECT_EQ(t.offset, expect_offset) << t.name;
      EXPECT_EQ(t.offset % alignment, 0u);
      EXPECT_EQ(t.data - f.tensors()[0].data, static_cast<ptrdiff_t>(t.offset));
      expect_offset = (t.offset + t.nbytes + alignment - 1) / alignment * alignment;
    }
    EXPECT_EQ(f.read_f32("a"), a);
    EXPECT_EQ(f.read_f32("b"), b);
    EXPECT_EQ(f.read_f32("c"), c);
  }
}

TEST(GgufAlignment, HandMadeFileWithAlignment64) {
  // A u32 general.alignment of 64 with the second tensor at offset 64 (legal) ...
  auto make = [](uint64_t second_offset) {
    Image im;
    im.header(2, 1).kv_u32("general.alignment", 64);
    im.tensor("a", {4}, 0, 0).tensor("b", {4}, 0, second_offset);
    im.pad(64);
    EXPECT_EQ(im.bytes.size() % 64, 0u);
    uint64_t data = im.bytes.size();
    im.zeros(second_offset + 16);
    for (int k = 0; k < 4; ++k) im.bytes[data + second_offset + 4 * k + 3] = 0x3f;  // 0.5f
    return im.bytes;
  };
  File f = File::from_bytes("a64.gguf", make(64));
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.tensor("b").offset, 64u);
  EXPECT_EQ(f.read_f32("b"), (std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f}));
  // ... but offset 32, aligned for the default, is not aligned for 64.
  EXPECT_GGUF_ERROR(make(32), "tensor 'b' offset 32", "not a multiple of the alignment 64");
}

// ---- Tensors ---------------------------------------------------------------------------------

TEST(GgufTensors, TableAndValuesRoundTrip) {
  std::vector<float> f32 = ramp(8 * 3), f16 = ramp(16 * 2, 3.0f), bf16 = ramp(4, 100.0f);
  std::vector<float> q8 = ramp(64 * 2, 2.0f), q4 = ramp(32 * 3 * 2, 0.5f);
  std::vector<int32_t> i32 = {0, -1, 7, std::numeric_limits<int32_t>::max(),
                              std::numeric_limits<int32_t>::min()};
  Writer w;
  w.set_string("general.architecture", "test");
  w.add_f32("f32", TensorType::F32, {8, 3}, f32.data());
  w.add_f32("blk.0.f16", TensorType::F16, {16, 2}, f16.data());
  w.add_f32("bf16", TensorType::BF16, {4}, bf16.data());
  w.add_f32("q8_0", TensorType::Q8_0, {64, 2}, q8.data());
  w.add_f32("q4_0", TensorType::Q4_0, {32, 3, 2, 1}, q4.data());
  w.add_i32("i32", {5}, i32.data());
  File f = round_trip(w);

  struct Expect {
    const char* name;
    TensorType type;
    std::vector<int64_t> ne;
    uint64_t nbytes;
    const char* shape;
  };
  const std::vector<Expect> expect = {
      {"f32", TensorType::F32, {8, 3}, 96, "[8, 3]"},
      {"blk.0.f16", TensorType::F16, {16, 2}, 64, "[16, 2]"},
      {"bf16", TensorType::BF16, {4}, 8, "[4]"},
      {"q8_0", TensorType::Q8_0, {64, 2}, 4 * 34, "[64, 2]"},
      {"q4_0", TensorType::Q4_0, {32, 3, 2, 1}, 6 * 18, "[32, 3, 2, 1]"},
      {"i32", TensorType::I32, {5}, 20, "[5]"},
  };
  ASSERT_EQ(f.tensors().size(), expect.size());
  uint64_t offset = 0;
  for (size_t k = 0; k < expect.size(); ++k) {
    const TensorInfo& t = f.tensors()[k];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, expect[k].name);
    EXPECT_EQ(t.type, expect[k].type);
    EXPECT_EQ(t.ne, expect[k].ne);
    EXPECT_EQ(t.nbytes, expect[k].nbytes);
    EXPECT_EQ(t.shape_string(), expect[k].shape);
    EXPECT_EQ(t.offset, offset);
    EXPECT_EQ(t.offset % 32, 0u);
    ASSERT_NE(t.data, nullptr);
    EXPECT_EQ(t.data - f.tensors()[0].data, static_cast<ptrdiff_t>(t.offset));
    EXPECT_EQ(&f.tensor(expect[k].name), &t);
    EXPECT_EQ(f.find_tensor(expect[k].name), &t);
    offset = (t.offset + t.nbytes + 31) / 32 * 32;
  }
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_EQ(f.data_offset() + offset, f.file_size());
  EXPECT_EQ(f.tensor("f32").n_elements(), 24);
  EXPECT_EQ(f.tensor("f32").n_rows(), 3);
  EXPECT_EQ(f.tensor("q4_0").n_elements(), 192);
  EXPECT_EQ(f.tensor("q4_0").n_rows(), 6);
  EXPECT_EQ(f.find_tensor("nope"), nullptr);

  // Values, within each type's precision.
  EXPECT_EQ(f.read_f32("f32"), f32);
  auto near = [](const std::vector<float>& got, const std::vector<float>& want, auto tol) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_NEAR(got[k], want[k], tol(k)) << "element " << k;
    }
  };
  near(f.read_f32("blk.0.f16"), f16, [&](size_t k) { return std::fabs(f16[k]) * 1e-3f + 1e-7f; });
  near(f.read_f32("bf16"), bf16, [&](size_t k) { return std::fabs(bf16[k]) * (1.0f / 256); });
  auto block_tol = [](const std::vector<float>& v, float frac) {
    return [&v, frac](size_t k) {
      float amax = 0;
      for (size_t j = k / 32 * 32; j < k / 32 * 32 + 32; ++j)
        amax = std::max(amax, std::fabs(v[j]));
      return amax * frac + 1e-6f;
    };
  };
  near(f.read_f32("q8_0"), q8, block_tol(q8, 1.0f / 127));  // half a step of amax/127, plus f16 d
  near(f.read_f32("q4_0"), q4, block_tol(q4, 0.14f));       // one step of amax/8, plus f16 d
  EXPECT_EQ(f.read_i32("i32"), i32);

  // Wrong-type reads.
  expect_error([&] { f.read_i32("f32"); },
               {"rt.gguf: ", "tensor 'f32' has type F32, expected I32"});
  expect_error([&] { f.read_f32("i32"); },
               {"rt.gguf: ", "tensor 'i32' has type I32", "cannot convert to f32"});
  expect_error([&] { f.tensor("nope"); }, {"rt.gguf: missing tensor 'nope'"});
  expect_error([&] { f.read_f32("nope"); }, {"rt.gguf: missing tensor 'nope'"});
}

TEST(GgufTensors, WriteAndOpenFromDisk) {
  std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());
  std::string path = dir + "/model.gguf";
  std::vector<float> vals = ramp(32 * 4);
  Writer w(64);
  w.set_string("general.name", "disk");
  w.add_f32("w", TensorType::Q8_0, {32, 4}, vals.data());
  w.write(path);
  std::vector<uint8_t> expect = w.to_bytes();
  EXPECT_EQ(slurp(path), expect);

  File f = File::open(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.file_size(), expect.size());
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.get_string("general.name"), "disk");
  EXPECT_EQ(f.read_f32("w"), File::from_bytes("mem", expect).read_f32("w"));
  // Copies share the mapping.
  File copy = f;
  EXPECT_EQ(copy.tensor("w").data, f.tensor("w").data);
  fs::remove_all(dir);
}

// RssFile of this process from /proc/self/status, in KiB (-1 where it cannot be read).
long rss_file_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssFile:", 0) == 0) return std::stol(line.substr(8));
  }
  return -1;
}

// release_pages drops the whole pages of a tensor's bytes from the resident set (a layer that
// copied them, QuantLinear's interleaved groups, never reads them again), and a later read
// faults the same bytes back in from the file; ranges outside the mapping are ignored.
TEST(GgufTensors, ReleasedPagesLeaveTheResidentSetAndReadBackTheSame) {
  std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/big.gguf";
  constexpr int kRows = 2048, kCols = 1024;  // 8 MiB of f32
  std::vector<float> vals(static_cast<size_t>(kRows) * kCols);
  for (size_t i = 0; i < vals.size(); ++i) vals[i] = static_cast<float>(i % 9973) - 17.5f;
  Writer w(32);
  w.add_f32("w", TensorType::F32, {kCols, kRows}, vals.data());
  w.write(path);
  const File f = File::open(path);
  const TensorInfo& t = f.tensor("w");
  ASSERT_EQ(t.nbytes, vals.size() * sizeof(float));
  // Touch every page.
  std::vector<uint8_t> before(t.data, t.data + t.nbytes);
  EXPECT_EQ(std::memcmp(before.data(), vals.data(), t.nbytes), 0);
  const long resident = rss_file_kib();
  f.release_pages(t.data, t.nbytes);
  const long after = rss_file_kib();
  if (resident >= 0 && after >= 0) {
    // 8 MiB of pages less the two partial ones at the ends; the kernel's RSS counters are
    // updated in batches (per-thread caches), so allow 1 MiB of slack.
    EXPECT_GE(resident - after, 7 * 1024) << "RssFile " << resident << " -> " << after << " KiB";
  }
  EXPECT_EQ(std::memcmp(t.data, before.data(), t.nbytes), 0);
  // Outside the mapping, empty, or an in-memory image: nothing happens.
  f.release_pages(before.data(), before.size());
  f.release_pages(t.data, 0);
  File::from_bytes("mem", w.to_bytes()).release_pages(t.data, t.nbytes);
  EXPECT_EQ(std::memcmp(t.data, vals.data(), t.nbytes), 0);
  fs::remove_all(dir);
}

TEST(GgufTensors, EmptyTensorsOverlapNothing) {
  // A writer gives an empty tensor the offset of the next one; that is not an overlap, in
  // either order in the table.
  std::vector<float> v = ramp(8);
  Writer w;
  w.add_f32("empty", TensorType::F32, {0}, nullptr);
  w.add_f32("full", TensorType::F32, {8}, v.data());
  File f = round_trip(w);
  EXPECT_EQ(f.tensor("empty").offset, f.tensor("full").offset);
  EXPECT_EQ(f.tensor("empty").nbytes, 0u);
  EXPECT_TRUE(f.read_f32("empty").empty());
  EXPECT_EQ(f.read_f32("full"), v);

  Image im;
  im.header(3, 0).tensor("full", {8}, 0, 0).tensor("empty", {0, 4}, 0, 0).tensor("mid", {0}, 0, 0);
  im.pad(32).zeros(32);
  File g = File::from_bytes("empty.gguf", im.bytes);
  EXPECT_EQ(g.tensor("empty").n_elements(), 0);
  EXPECT_EQ(g.tensor("empty").n_rows(), 0);
}

TEST(GgufTensors, WriterRejectsBadTensors) {
  Writer w;
  std::vector<float> v = ramp(64);
  expect_error([&] { w.add_raw("x", TensorType::F32, {4}, std::vector<uint8_t>(15)); },
               {"tensor 'x' has 15 bytes, expected 16"});
  expect_error([&] { w.add_raw("x", TensorType::F32, {}, {}); }, {"tensor 'x'", "dims"});
  expect_error([&] { w.add_f32("q", TensorType::Q8_0, {16}, v.data()); }, {"Q8_0", "32"});
  w.add_f32("a", TensorType::F32, {4}, v.data());
  expect_error([&] { w.add_f32("a", TensorType::F32, {4}, v.data()); }, {"duplicate tensor 'a'"});
  expect_error([] { Writer bad(48); }, {"alignment must be a power of two, got 48"});
  expect_error([] { Writer bad(0); }, {"alignment must be a power of two, got 0"});
}

// ---- Streaming writer ------------------------------------------------------------------------

// One tensor of a test file: declared in both writers, data given to the stream in chunks.
struct StreamTensor {
  std::string name;
  TensorType type;
  std::vector<int64_t> ne;
  std::vector<uint8_t> bytes;
};

// Fills `w` (a Writer or a StreamWriter) with the same metadata.
template <typename W>
void sample_metadata(W& w) {
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "héllo", ""});
  w.set_f32_array("floats", {0.5f, -1.0f});
  w.set("nested", Value::of_array(ValueType::ARRAY,
                                  {Value::of_array(ValueType::INT32, {Value::of_i32(-3)})}));
  w.set_bool("flag", true);
  w.set_string("odd", "abc");  // makes the header length odd
}

std::vector<StreamTensor> sample_tensors() {
  std::vector<StreamTensor> t;
  auto add = [&](const std::string& name, TensorType type, std::vector<int64_t> ne) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    std::vector<float> v = ramp(static_cast<size_t>(n), 1.5f);
    t.push_back({name, type, ne, quantize(type, v.data(), n)});
  };
  add("token_embd.weight", TensorType::Q8_0, {64, 5});
  add("norm", TensorType::F32, {7});
  add("empty", TensorType::F32, {0, 3});
  add("blk.0.f16", TensorType::F16, {3, 3});
  add("blk.0.bf16", TensorType::BF16, {5});
  add("q4", TensorType::Q4_0, {32, 3, 2});
  // Larger than the writer's 4 MiB output buffer, so whole chunks bypass it.
  add("big", TensorType::F32, {1024, 1100});
  add("last", TensorType::F16, {1});
  return t;
}

TEST(GgufStream, ByteIdenticalToTheInMemoryWriter) {
  const std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::vector<StreamTensor> tensors = sample_tensors();
  for (uint32_t alignment : {1u, 32u, 64u, 4096u}) {
    for (size_t chunk : {size_t{1} << 30, size_t{7}, size_t{5} << 20}) {
      if (chunk == 7 && alignment != 32) continue;  // byte-wise once is enough
      SCOPED_TRACE(cat("alignment ", alignment, ", chunk ", chunk));
      Writer mem(alignment);
      StreamWriter st(alignment);
      sample_metadata(mem);
      sample_metadata(st);
      for (const StreamTensor& t : tensors) {
        mem.add_raw(t.name, t.type, t.ne, t.bytes);
        st.add_tensor(t.name, t.type, t.ne);
      }
      const std::string path = dir + "/stream.gguf";
      st.begin(path);
      for (const StreamTensor& t : tensors) {
        // Chunks of `chunk` bytes, except for 7: one byte, then 7 at a time.
        size_t at = 0;
        if (chunk == 7 && !t.bytes.empty()) {
          st.write_tensor_data(t.name, t.bytes.data(), 1);
          at = 1;
        }
        while (at < t.bytes.size()) {
          size_t n = std::min(chunk, t.bytes.size() - at);
          st.write_tensor_data(t.name, t.bytes.data() + at, n);
          at += n;
        }
      }
      st.finish();
      const std::vector<uint8_t> expect = mem.to_bytes();
      const std::vector<uint8_t> got = slurp(path);
      ASSERT_EQ(got.size(), expect.size());
      EXPECT_TRUE(got == expect);
      EXPECT_EQ(st.file_size(), expect.size());
      EXPECT_EQ(mem.file_size(), expect.size());
      EXPECT_EQ(st.bytes_written(), expect.size());
      // And the reader agrees on where everything is.
      File f = File::open(path);
      EXPECT_EQ(f.data_offset(), st.data_offset());
      EXPECT_EQ(f.read_f32("big"), File::from_bytes("mem", expect).read_f32("big"));
    }
  }
  fs::remove_all(dir);
}

TEST(GgufStream, F32ChunksEncodeLikeAddF32) {
  const std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::vector<float> a = ramp(64 * 6, 3.0f), b = ramp(32 * 4, 0.25f), c = ramp(10);
  Writer mem;
  mem.add_f32("a", TensorType::Q8_0, {64, 6}, a.data());
  mem.add_f32("b", TensorType::Q4_0, {32, 4}, b.data());
  mem.add_f32("c", TensorType::BF16, {10}, c.data());
  StreamWriter st;
  st.add_tensor("a", TensorType::Q8_0, {64, 6});
  st.add_tensor("b", TensorType::Q4_0, {32, 4});
  st.add_tensor("c", TensorType::BF16, {10});
  st.begin(dir + "/f32.gguf");
  st.write_tensor_f32("a", a.data(), 64);           // one row
  st.write_tensor_f32("a", a.data() + 64, 32);      // one block
  st.write_tensor_f32("a", a.data() + 96, 64 * 6 - 96);
  st.write_tensor_f32("b", b.data(), 32 * 4);
  st.write_tensor_f32("c", c.data(), 3);
  st.write_tensor_f32("c", c.data() + 3, 7);
  st.finish();
  EXPECT_TRUE(slurp(dir + "/f32.gguf") == mem.to_bytes());
  fs::remove_all(dir);
}

// A stream writer with tensors "a" (F32 [4], 16 bytes), "b" (F16 [8], 16 bytes) and "c"
// (Q8_0 [32], 34 bytes) declared and begun at `path`.
std::unique_ptr<StreamWriter> begun(const std::string& path) {
  auto w = std::make_unique<StreamWriter>();
  w->set_string("general.name", "x");
  w->add_tensor("a", TensorType::F32, {4});
  w->add_tensor("b", TensorType::F16, {8});
  w->add_tensor("c", TensorType::Q8_0, {32});
  w->begin(path);
  return w;
}

TEST(GgufStream, MisuseIsAClearError) {
  const std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/misuse.gguf";
  const std::vector<uint8_t> bytes(64, 0x11);
  {
    auto w = begun(path);
    expect_error([&] { w->write_tensor_data("b", bytes.data(), 16); },
                 {"GGUF stream writer: data for tensor 'b' while tensor 'a' is next",
                  "declaration order"});
    expect_error([&] { w->write_tensor_data("zz", bytes.data(), 4); },
                 {"tensor 'zz' was never declared"});
    expect_error([&] { w->write_tensor_data("a", bytes.data(), 17); },
                 {"tensor 'a': 17 more bytes after 0 exceed its size of 16 bytes"});
    w->write_tensor_data("a", bytes.data(), 10);
    expect_error([&] { w->write_tensor_data("a", bytes.data(), 7); },
                 {"tensor 'a': 7 more bytes after 10 exceed its size of 16 bytes"});
    expect_error([&] { w->finish(); },
                 {"GGUF stream writer: ", path, "tensor 'a' has 10 of its 16 bytes",
                  "3 of 3 tensors incomplete"});
    w->write_tensor_data("a", bytes.data(), 6);
    expect_error([&] { w->write_tensor_data("a", bytes.data(), 1); },
                 {"tensor 'a' is already complete (16 bytes)"});
    w->write_tensor_data("a", bytes.data(), 0);  // an empty chunk is harmless
    expect_error([&] { w->finish(); }, {"tensor 'b' has 0 of its 16 bytes", "2 of 3 tensors"});
    // Declarations are closed once the header is written.
    expect_error([&] { w->add_tensor("d", TensorType::F32, {4}); },
                 {"cannot add tensor 'd' after begin() wrote the header"});
    expect_error([&] { w->set_u32("k", 1); },
                 {"cannot set metadata key 'k' after begin() wrote the header"});
    expect_error([&] { w->begin(path); }, {"begin() called twice"});
    // f32 chunks must be whole blocks of the tensor's type.
    w->write_tensor_data("b", bytes.data(), 16);
    std::vector<float> v = ramp(32);
    expect_error([&] { w->write_tensor_f32("c", v.data(), 16); },
                 {"tensor 'c'", "Q8_0", "32"});
    w->write_tensor_f32("c", v.data(), 32);
    w->finish();
    EXPECT_EQ(w->bytes_written(), fs::file_size(path));
    expect_error([&] { w->finish(); }, {"finish() called twice"});
    expect_error([&] { w->write_tensor_data("a", bytes.data(), 1); }, {"after finish()"});
    File f = File::open(path);  // the finished file is valid
    EXPECT_EQ(f.tensors().size(), 3u);
  }
  {
    StreamWriter w;
    w.add_tensor("a", TensorType::F32, {4});
    expect_error([&] { w.write_tensor_data("a", bytes.data(), 16); }, {"before begin()"});
    expect_error([&] { w.finish(); }, {"finish() before begin()"});
    expect_error([&] { w.add_tensor("a", TensorType::F32, {4}); }, {"duplicate tensor 'a'"});
    expect_error([&] { w.add_tensor("q", TensorType::Q4_0, {16, 2}); },
                 {"tensor 'q' of type Q4_0 has rows of 16 elements", "block size 32"});
    expect_error([&] { w.add_tensor("n", TensorType::F32, {4, -1}); },
                 {"tensor 'n' has an impossible dimension -1"});
    expect_error([&] { w.add_tensor("z", TensorType::F32, {}); }, {"tensor 'z' needs 1 to 4 dims"});
  }
  fs::remove_all(dir);
}

TEST(GgufStream, AnUnfinishedFileIsRemoved) {
  const std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/partial.gguf";
  const std::vector<uint8_t> bytes(16, 0);
  {
    auto w = begun(path);
    w->write_tensor_data("a", bytes.data(), 16);
    EXPECT_TRUE(fs::exists(path));
  }  // destroyed without finish()
  EXPECT_FALSE(fs::exists(path));
  {
    auto w = begun(path);
    EXPECT_THROW(w->finish(), Error);  // a failed finish() leaves it unfinished too
  }
  EXPECT_FALSE(fs::exists(path));
  fs::remove_all(dir);
}

TEST(GgufStream, FileSystemErrorsNameThePath) {
  const std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string missing = dir + "/no/such/dir/x.gguf";
  expect_error([&] { begun(missing); },
               {missing + ": cannot open for writing: No such file or directory"});
  expect_error([&] { begun(dir); }, {dir + ": cannot open for writing: Is a directory"});
  // The in-memory writer reports the same way.
  expect_error([&] { Writer().write(missing); }, {missing + ": cannot open for writing"});
  if (fs::exists("/dev/full")) {
    // A full disk: every write fails with ENOSPC. /dev/full is not a regular file, so the
    // failed writer must leave it alone.
    StreamWriter w;
    std::vector<uint8_t> big(8 << 20, 1);
    w.add_tensor("big", TensorType::I8, {static_cast<int64_t>(big.size())});
    w.begin("/dev/full");
    expect_error(
        [&] {
          w.write_tensor_data("big", big.data(), big.size());
          w.finish();
        },
        {"/dev/full: write failed", "No space left on device"});
    expect_error([] { Writer().write("/dev/full"); },
                 {"/dev/full: write failed", "No space left on device"});
  }
  EXPECT_TRUE(!fs::exists("/dev/full") || fs::is_character_file("/dev/full"));
  fs::remove_all(dir);
}

// ---- Bad input -------------------------------------------------------------------------------

// A valid image with every kind of header element, to cut at every length.
std::vector<uint8_t> sample_image(uint64_t* required_size) {
  Writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "hello"});
  w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1});
  w.set("nested", Value::of_array(ValueType::ARRAY,
                                  {Value::of_array(ValueType::STRING, {Value::of_string("x")})}));
  w.set_bool("flag", true);
  std::vector<float> v = ramp(64);
  w.add_f32("a", TensorType::F32, {8, 2}, v.data());
  w.add_f32("b", TensorType::Q8_0, {32, 2}, v.data());
  w.add_f32("c", TensorType::F16, {6}, v.data());
  std::vector<uint8_t> bytes = w.to_bytes();
  File f = File::from_bytes("sample.gguf", bytes);
  const TensorInfo& last = f.tensors().back();
  *required_size = f.data_offset() + last.offset + last.nbytes;
  return bytes;
}

TEST(GgufBadInput, EveryTruncationThrowsACleanError) {
  uint64_t required = 0;
  std::vector<uint8_t> full = sample_image(&required);
  ASSERT_LT(required, full.size());  // the last tensor's padding is optional
  for (size_t cut = 0; cut < full.size(); ++cut) {
    SCOPED_TRACE(cut);
    std::vector<uint8_t> bytes(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
    if (cut < required) {
      std::string msg = parse_error(bytes, "cut.gguf");
      EXPECT_EQ(msg.rfind("cut.gguf: ", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                  msg.find("past the end") != std::string::npos ||
                  msg.find("outside the file") != std::string::npos)
          << msg;
    } else {
      EXPECT_NO_THROW(File::from_bytes("cut.gguf", bytes));
    }
  }
  EXPECT_GGUF_ERROR(std::vector<uint8_t>(), "truncated file", "0 bytes");
  EXPECT_GGUF_ERROR(std::vector<uint8_t>(full.begin(), full.begin() + 6), "truncated file",
                    "version");
  EXPECT_GGUF_ERROR(std::vector<uint8_t>(full.begin(), full.begin() + 30), "metadata count",
                    "runs past the end of the file");
}

TEST(GgufBadInput, TruncatedRealModelsThrowCleanErrors) {
  std::string path = test::shared_path("models/stories260K.gguf");
  ASSERT_TRUE(fs::exists(path)) << path;
  std::vector<uint8_t> full = slurp(path);
  File whole = File::from_bytes("stories260K.gguf", full);
  uint64_t required = 0;
  for (const TensorInfo& t : whole.tensors()) {
    required = std::max(required, whole.data_offset() + t.offset + t.nbytes);
  }
  ASSERT_LE(required, full.size());
  for (size_t cut = 0; cut < required; cut += (cut < 8192 ? 7 : 4099)) {
    SCOPED_TRACE(cut);
    std::vector<uint8_t> bytes(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
    std::string msg = parse_error(bytes, "stories260K.gguf");
    EXPECT_EQ(msg.rfind("stories260K.gguf: ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  // A header cut after the metadata: tensor data lies outside the file.
  std::vector<uint8_t> head(full.begin(), full.begin() + 64 * 1024);
  EXPECT_NE(parse_error(head, "head.gguf").find("lies outside the file"), std::string::npos);
}

TEST(GgufBadInput, WrongMagic) {
  Image im;
  im.raw("GGML").u32(3).u64(0).u64(0);
  EXPECT_GGUF_ERROR(im.bytes, "not a GGUF file", "magic is 'GGML'", "expected 'GGUF'");
  Image bin;
  bin.u32(0x00feff7f).u32(3).u64(0).u64(0);
  EXPECT_GGUF_ERROR(bin.bytes, "not a GGUF file", "\\x7f\\xff\\xfe\\x00");
  const std::string json = "{\"a\": 1}";
  EXPECT_GGUF_ERROR(std::vector<uint8_t>(json.begin(), json.end()), "not a GGUF file",
                    "magic is '{\"a\"'");
}

TEST(GgufBadInput, UnsupportedVersionsAndBigEndian) {
  for (uint32_t v : {0u, 1u, 4u, 1000u}) {
    Image im;
    im.header(0, 0, v);
    EXPECT_GGUF_ERROR(im.bytes, "unsupported GGUF version " + std::to_string(v),
                      "versions 2 and 3");
  }
  for (uint32_t v : {2u, 3u}) {
    // A big-endian file: the version's bytes (and every other number's) are reversed.
    Image im;
    im.raw("GGUF").le(0, 3).u8(static_cast<uint8_t>(v)).zeros(16);
    EXPECT_GGUF_ERROR(im.bytes, "big-endian");
  }
}

TEST(GgufBadInput, StringLengthPastTheEnd) {
  Image key;
  key.header(0, 1).u64(1000).raw("general.name");
  EXPECT_GGUF_ERROR(key.bytes, "metadata key #0", "string length 1000 at offset 24",
                    "runs past the end of the file");
  Image huge;
  huge.header(0, 1).u64(~uint64_t{0}).raw("general.name");
  EXPECT_GGUF_ERROR(huge.bytes, "string length 18446744073709551615", "runs past the end");
  Image value;
  value.header(0, 1).str("general.name").u32(8).u64(50).raw("short");
  EXPECT_GGUF_ERROR(value.bytes, "key 'general.name'", "string length 50", "past the end");
  Image name;
  name.header(1, 0).u64(1ull << 62).raw("tok");
  EXPECT_GGUF_ERROR(name.bytes, "tensor name #0", "past the end");
  Image elem;
  elem.header(0, 1).str("tokens").u32(9).u32(8).u64(2).str("ok").u64(99).raw("x");
  EXPECT_GGUF_ERROR(elem.bytes, "key 'tokens'", "string length 99", "past the end");
}

TEST(GgufBadInput, ArrayLengthPastTheEnd) {
  Image im;
  im.header(0, 1).str("tokenizer.ggml.scores").u32(9).u32(6).u64(1000).f32(0).f32(1);
  EXPECT_GGUF_ERROR(im.bytes, "key 'tokenizer.ggml.scores'", "array length 1000",
                    "runs past the end of the file");
  // Counts whose byte size overflows 64 bits.
  Image big;
  big.header(0, 1).str("a").u32(9).u32(10).u64(1ull << 62).u64(0);
  EXPECT_GGUF_ERROR(big.bytes, "key 'a'", "array length 4611686018427387904", "past the end");
  Image strings;
  strings.header(0, 1).str("s").u32(9).u32(8).u64(~uint64_t{0});
  EXPECT_GGUF_ERROR(strings.bytes, "key 's'", "array length", "past the end");
  // An inner array of a nested array.
  Image nested;
  nested.header(0, 1).str("n").u32(9).u32(9).u64(1).u32(4).u64(1ull << 40);
  EXPECT_GGUF_ERROR(nested.bytes, "key 'n'", "array length 1099511627776", "past the end");
}

TEST(GgufBadInput, TooManyEntriesForTheFile) {
  Image kv;
  kv.header(0, 1ull << 40);
  EXPECT_GGUF_ERROR(kv.bytes, "metadata count 1099511627776", "past the end");
  Image t;
  t.header(~uint64_t{0}, 0);
  EXPECT_GGUF_ERROR(t.bytes, "tensor count 18446744073709551615", "past the end");
}

TEST(GgufBadInput, BadValueTypesAndValues) {
  Image type;
  type.header(0, 1).str("k").u32(13).u32(0);
  EXPECT_GGUF_ERROR(type.bytes, "key 'k'", "unknown value type 13");
  Image elem;
  elem.header(0, 1).str("k").u32(9).u32(77).u64(0);
  EXPECT_GGUF_ERROR(elem.bytes, "key 'k'", "unknown array element type 77");
  Image boolean;
  boolean.header(0, 1).str("k").u32(7).u8(2).zeros(8);
  EXPECT_GGUF_ERROR(boolean.bytes, "key 'k'", "bool value 2");
  Image deep;
  deep.header(0, 1).str("deep").u32(9);
  for (int k = 0; k < 20; ++k) deep.u32(9).u64(1);
  deep.zeros(64);
  EXPECT_GGUF_ERROR(deep.bytes, "key 'deep'", "nested deeper than");
}

TEST(GgufBadInput, TensorDataOutsideTheFile) {
  Image im;
  im.header(1, 0).tensor("w", {16}, 0, 0).pad(32).zeros(32);  // needs 64 bytes, has 32
  EXPECT_GGUF_ERROR(im.bytes, "tensor 'w' data [", "lies outside the file");
  Image far;
  far.header(1, 0).tensor("w", {4}, 0, 1ull << 60).pad(32).zeros(64);
  EXPECT_GGUF_ERROR(far.bytes, "tensor 'w'", "lies outside the file");
  Image nodata;
  nodata.header(1, 0).tensor("w", {4}, 0, 0);  // the data section is missing entirely
  EXPECT_GGUF_ERROR(nodata.bytes, "truncated file", "data section");
}

TEST(GgufBadInput, OverlappingTensors) {
  Image im;
  im.header(3, 0).tensor("a", {16}, 0, 0).tensor("b", {16}, 0, 64).tensor("c", {16}, 0, 32);
  im.pad(32).zeros(128);
  EXPECT_GGUF_ERROR(im.bytes, "tensors 'a' and 'c' overlap");
  Image same;
  same.header(2, 0).tensor("a", {8}, 0, 0).tensor("b", {8}, 0, 0).pad(32).zeros(64);
  EXPECT_GGUF_ERROR(same.bytes, "tensors 'a' and 'b' overlap");
  // A large tensor covering a later small one that is not its neighbour in the table.
  Image span;
  span.header(3, 0).tensor("small", {4}, 0, 64).tensor("big", {64}, 0, 0);
  span.tensor("after", {4}, 0, 256).pad(32).zeros(288);
  EXPECT_GGUF_ERROR(span.bytes, "tensors 'big' and 'small' overlap");
}

TEST(GgufBadInput, UnknownTensorType) {
  for (uint32_t type : {4u, 5u, 31u, 1000u}) {
    Image im;
    im.header(1, 0).tensor("w", {32}, type, 0).pad(32).zeros(256);
    EXPECT_GGUF_ERROR(im.bytes, "tensor 'w' has unknown tensor type " + std::to_string(type));
  }
}

TEST(GgufBadInput, DimensionCount) {
  Image zero;
  zero.header(1, 0).tensor("w", {}, 0, 0).pad(32).zeros(32);
  EXPECT_GGUF_ERROR(zero.bytes, "tensor 'w' has 0 dimensions", "1 to 4");
  Image five;
  five.header(1, 0).tensor("w", {1, 1, 1, 1, 1}, 0, 0).pad(32).zeros(32);
  EXPECT_GGUF_ERROR(five.bytes, "tensor 'w' has 5 dimensions", "1 to 4");
  Image huge;
  huge.header(1, 0).tensor("w", {1ull << 41}, 0, 0).pad(32).zeros(32);
  EXPECT_GGUF_ERROR(huge.bytes, "tensor 'w' has an impossible dimension");
  Image product;  // each dimension is fine, the element count is not
  product.header(1, 0).tensor("w", {1ull << 30, 1ull << 30}, 0, 0).pad(32).zeros(32);
  EXPECT_GGUF_ERROR(product.bytes, "tensor 'w' has an impossible dimension");
  Image block;  // Q4_0 rows must be whole 32-element blocks
  block.header(1, 0).tensor("w", {16, 2}, 2, 0).pad(32).zeros(64);
  EXPECT_GGUF_ERROR(block.bytes, "tensor 'w' of type Q4_0 has rows of 16 elements",
                    "block size 32");
}

TEST(GgufBadInput, MisalignedTensorOffset) {
  Image im;
  im.header(2, 0).tensor("a", {4}, 0, 0).tensor("b", {4}, 0, 16).pad(32).zeros(64);
  EXPECT_GGUF_ERROR(im.bytes, "tensor 'b' offset 16 is not a multiple of the alignment 32");
  // With general.alignment = 16 the same offset is fine.
  Image ok;
  ok.header(2, 1).kv_u32("general.alignment", 16);
  ok.tensor("a", {4}, 0, 0).tensor("b", {4}, 0, 16).pad(16).zeros(32);
  EXPECT_EQ(File::from_bytes("ok.gguf", ok.bytes).tensor("b").offset, 16u);
}

TEST(GgufBadInput, BadGeneralAlignment) {
  auto with = [](const std::function<void(Image&)>& value) {
    Image im;
    im.header(0, 1).str("general.alignment");
    value(im);
    return im.bytes;
  };
  EXPECT_GGUF_ERROR(with([](Image& im) { im.u32(4).u32(0); }), "general.alignment", "got 0");
  EXPECT_GGUF_ERROR(with([](Image& im) { im.u32(4).u32(48); }), "general.alignment", "power of two",
                    "got 48");
  EXPECT_GGUF_ERROR(with([](Image& im) { im.u32(5).i32(-32); }), "general.alignment", "got -32");
  EXPECT_GGUF_ERROR(with([](Image& im) { im.u32(10).u64(~uint64_t{0}); }), "general.alignment",
                    "got 18446744073709551615");
  EXPECT_GGUF_ERROR(with([](Image& im) { im.u32(10).u64(1ull << 63); }), "general.alignment");
  EXPECT_GGUF_ERROR(with([](Image& im) { im.u32(6).f32(32.0f); }), "general.alignment", "got 32");
  EXPECT_GGUF_ERROR(with([](Image& im) { im.u32(8).str("32"); }), "general.alignment",
                    "got \"32\"");
  // Other integer types carrying a power of two are accepted.
  File f = File::from_bytes("a.gguf", with([](Image& im) { im.u32(10).u64(128); }));
  EXPECT_EQ(f.alignment(), 128u);
}

TEST(GgufBadInput, DuplicateKey) {
  Image im;
  im.header(0, 2).kv_u32("llama.block_count", 5).kv_string("llama.block_count", "6");
  EXPECT_GGUF_ERROR(im.bytes, "duplicate metadata key 'llama.block_count'");
}

TEST(GgufBadInput, DuplicateTensorName) {
  Image im;
  im.header(2, 0).tensor("w", {4}, 0, 0).tensor("w", {4}, 0, 32).pad(32).zeros(64);
  EXPECT_GGUF_ERROR(im.bytes, "duplicate tensor name 'w'");
}

TEST(GgufBadInput, MissingKeyAndWrongValueType) {
  Writer w;
  w.set_u32("n", 5);
  w.set_string("s", "text");
  w.set_f32("x", 0.5f);
  w.set_bool("b", true);
  w.set_i32_array("ints", {1, 2});
  w.set_f32_array("floats", {0.5f});
  w.set("big", Value::of_u64(~uint64_t{0}));
  w.set("bigs", Value::of_array(ValueType::UINT64, {Value::of_u64(~uint64_t{0})}));
  File f = File::from_bytes("meta.gguf", w.to_bytes());

  expect_error([&] { f.get_string("general.architecture"); },
               {"meta.gguf: missing required key 'general.architecture'"});
  expect_error([&] { f.get_int("absent"); }, {"meta.gguf: missing required key 'absent'"});
  expect_error([&] { f.get_float("absent"); }, {"meta.gguf: missing required key 'absent'"});
  expect_error([&] { f.get_bool("absent"); }, {"meta.gguf: missing required key 'absent'"});
  expect_error([&] { f.get_array("absent"); }, {"meta.gguf: missing required key 'absent'"});
  expect_error([&] { f.get_string_array("absent"); }, {"meta.gguf: missing required key"});

  expect_error([&] { f.get_string("n"); }, {"meta.gguf: key 'n' has type u32, expected string"});
  // A fallback does not hide a wrong type.
  expect_error([&] { f.get_string("n", "dflt"); }, {"meta.gguf: key 'n' has type u32"});
  expect_error([&] { f.get_int("s"); },
               {"meta.gguf: key 's' has type string, expected an integer"});
  expect_error([&] { f.get_int("x"); }, {"meta.gguf: key 'x' has type f32, expected an integer"});
  expect_error([&] { f.get_int("big"); }, {"meta.gguf: key 'big': ", "too large"});
  expect_error([&] { f.get_float("s"); },
               {"meta.gguf: key 's' has type string, expected a number"});
  expect_error([&] { f.get_bool("n"); }, {"meta.gguf: key 'n' has type u32, expected bool"});
  expect_error([&] { f.get_array("s"); }, {"meta.gguf: key 's' has type string, expected array"});
  expect_error([&] { f.get_string_array("ints"); },
               {"meta.gguf: key 'ints' has type array, expected array of strings"});
  expect_error([&] { f.get_int_array("floats"); },
               {"meta.gguf: key 'floats' has type array, expected array of integers"});
  expect_error([&] { f.get_int_array("bigs"); }, {"meta.gguf: key 'bigs': ", "too large"});
  expect_error([&] { f.get_float_array("s"); }, {"meta.gguf: key 's'", "array of numbers"});
  EXPECT_EQ(f.get_float("x"), 0.5);
  EXPECT_EQ(f.get_float_array("ints"), (std::vector<double>{1, 2}));
}

TEST(GgufBadInput, OpenReportsFileSystemErrors) {
  std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());
  expect_error([&] { File::open(dir + "/missing.gguf"); },
               {dir + "/missing.gguf: cannot open: No such file or directory"});
  expect_error([&] { File::open(dir); }, {dir + ": not a regular file"});
  std::string empty = dir + "/empty.gguf";
  std::ofstream(empty).close();
  expect_error([&] { File::open(empty); }, {empty + ": truncated file"});
  std::string text = dir + "/notes.txt";
  std::ofstream(text) << "hello world, this is not a model\n";
  expect_error([&] { File::open(text); }, {text + ": not a GGUF file (magic is 'hell'"});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace fastkv::gguf
