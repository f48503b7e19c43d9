// GGUF reader (versions 2 and 3, memory-mapped) and writer.
//
// File layout (little endian): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
// kv_count × {string key, u32 value_type, value}, tensor_count × {string name, u32 n_dims,
// n_dims × u64 ne, u32 type, u64 offset}, padding to `general.alignment` (default 32), then the
// data section; each tensor's offset is relative to the data section and aligned.
// Strings are u64 length + bytes (no terminator); arrays are u32 element type + u64 count +
// elements (arrays may nest).
//
// Every violation of the format is reported as fastkv::Error("<file>: <problem>"): nothing is
// read outside the file, whatever its contents.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/tensor_type.h"

namespace fastkv::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

const char* value_type_name(ValueType t);

// One metadata value. Scalars are stored widened: unsigned types in `u`, signed in `i`,
// floats in `f`, bools in `b`; strings in `str`; arrays in `arr` with `elem_type`.
struct Value {
  ValueType type = ValueType::UINT32;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string str;
  ValueType elem_type = ValueType::UINT32;  // arrays only
  std::vector<Value> arr;                   // arrays only

  bool is_integer() const;
  bool is_float() const { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }
  // Numeric value of any integer, float or bool value; throws Error for strings and arrays.
  double as_double() const;
  // Integer value (floats must be integral); throws Error otherwise or when out of range.
  int64_t as_int() const;

  static Value of_u8(uint8_t v);
  static Value of_i8(int8_t v);
  static Value of_u16(uint16_t v);
  static Value of_i16(int16_t v);
  static Value of_u32(uint32_t v);
  static Value of_i32(int32_t v);
  static Value of_u64(uint64_t v);
  static Value of_i64(int64_t v);
  static Value of_f32(float v);
  static Value of_f64(double v);
  static Value of_bool(bool v);
  static Value of_string(std::string v);
  static Value of_array(ValueType elem_type, std::vector<Value> elems);
};

// Renders a value for display: scalars as text, arrays as "[a, b, ...]" cut after max_elems.
std::string to_string(const Value& v, size_t max_elems = 8);

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<int64_t> ne;     // dimensions, fastest-varying first (ne[0] = row length)
  uint64_t offset = 0;         // byte offset inside the data section
  uint64_t nbytes = 0;         // bytes_for(type, n_elements())
  const uint8_t* data = nullptr;  // start of the tensor's bytes inside the mapping

  int64_t n_elements() const;
  int64_t n_rows() const { return ne.empty() || ne[0] == 0 ? 0 : n_elements() / ne[0]; }
  std::string shape_string() const;  // "[64, 512]"
};

class File {
 public:
  // Memory-maps and parses `path`; throws Error on any problem.
  static File open(const std::string& path);
  // Parses an in-memory image (fuzzing, tests); `name` is used in error messages.
  static File from_bytes(std::string name, std::vector<uint8_t> bytes);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return size_; }
  uint64_t data_offset() const { return data_offset_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed access. The one-argument forms throw Error("<file>: missing required key 'k'") when
  // the key is absent and Error("<file>: key 'k' has type X, expected Y") on a type mismatch.
  std::string get_string(std::string_view key) const;
  std::string get_string(std::string_view key, const std::string& fallback) const;
  int64_t get_int(std::string_view key) const;
  int64_t get_int(std::string_view key, int64_t fallback) const;
  double get_float(std::string_view key) const;
  double get_float(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key) const;
  bool get_bool(std::string_view key, bool fallback) const;
  const std::vector<Value>& get_array(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<double> get_float_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  // Throws Error("<file>: missing tensor 'name'") when absent.
  const TensorInfo& tensor(std::string_view name) const;

  // Decodes a tensor into f32 (any type with a dequantisation routine); throws otherwise.
  std::vector<float> read_f32(const TensorInfo& t) const;
  std::vector<float> read_f32(std::string_view name) const { return read_f32(tensor(name)); }
  // Reads an I32 tensor.
  std::vector<int32_t> read_i32(std::string_view name) const;

  // "<file>: <message>" as an Error, for callers that find semantic problems.
  [[noreturn]] void error(const std::string& message) const;

 private:
  struct Storage;
  void parse();

  std::shared_ptr<Storage> storage_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<TensorInfo> tensors_;
};

// Builds a GGUF (version 3) file: metadata in insertion order, tensors aligned.
class Writer {
 public:
  explicit Writer(uint32_t alignment = 32);

  // Sets (or replaces) a metadata key.
  void set(const std::string& key, Value v);
  void set_string(const std::string& key, std::string v) { set(key, Value::of_string(std::move(v))); }
  void set_u32(const std::string& key, uint32_t v) { set(key, Value::of_u32(v)); }
  void set_i32(const std::string& key, int32_t v) { set(key, Value::of_i32(v)); }
  void set_u64(const std::string& key, uint64_t v) { set(key, Value::of_u64(v)); }
  void set_f32(const std::string& key, float v) { set(key, Value::of_f32(v)); }
  void set_bool(const std::string& key, bool v) { set(key, Value::of_bool(v)); }
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);

  // Adds a tensor from raw bytes already in `type`'s encoding (size must match ne).
  void add_raw(const std::string& name, TensorType type, std::vector<int64_t> ne,
               std::vector<uint8_t> bytes);
  // Adds a tensor from f32 values, encoded as `type` (F32, F16, BF16, Q8_0 or Q4_0).
  void add_f32(const std::string& name, TensorType type, std::vector<int64_t> ne,
               const float* values);
  void add_i32(const std::string& name, std::vector<int64_t> ne, const int32_t* values);

  std::vector<uint8_t> to_bytes() const;
  // Writes the file; throws Error when it cannot be written.
  void write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> bytes;
  };
  uint32_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace fastkv::gguf
