// GGUF reader (versions 2 and 3, memory-mapped) and writers: `Writer` builds a file in memory,
// `StreamWriter` writes one tensor chunk at a time (files far larger than memory).
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
  // nullptr when absent; throws Error for a key whose array drop_arrays() freed.
  const Value* find(std::string_view key) const;
  // Frees the elements of every array of at least min_elements: a model keeps its File for its
  // lifetime, and the tokenizer's arrays, once read into its own tables, are tens of MB parsed
  // (about 100 bytes a Value: 15 MB for a 49K-token vocab with its merges, several times that
  // for a 128K one). The keys stay in metadata() with empty arrays; reading one afterwards is
  // an error naming the key, never an empty answer.
  void drop_arrays(size_t min_elements);
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

  // Tells the kernel the mapped tensor bytes are not needed now (the model has converted them
  // into its own buffers): their pages leave the resident set, and are read from the file
  // again if a tensor is read later. No effect on in-memory images.
  void release_tensor_pages() const;
  // The same for the whole pages inside [data, data + bytes) (a tensor's bytes in the mapping),
  // right after a layer copied them: the file's pages then never add to the copy's (peak RSS).
  void release_pages(const uint8_t* data, uint64_t bytes) const;

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
  std::vector<std::string> dropped_;  // keys whose arrays drop_arrays() freed
  std::vector<TensorInfo> tensors_;
};

// What Writer and StreamWriter share: the metadata (in insertion order), the tensor table
// (name, type, ne, in declaration order) and the one encoding of everything before the data
// section. Tensor data follows in declaration order, each tensor starting at an offset that is a
// multiple of the alignment and padded with zeros to the next multiple (the last one too).
class WriterBase {
 public:
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

  uint32_t alignment() const { return alignment_; }
  // Size of the header, metadata and tensor table padded to the alignment: where data begins.
  uint64_t data_offset() const;
  // Size of the whole file as it will be written.
  uint64_t file_size() const;

 protected:
  explicit WriterBase(uint32_t alignment);

  struct TensorEntry {
    std::string name;
    TensorType type;
    std::vector<int64_t> ne;
    uint64_t nbytes;  // bytes_for(type, elements)
    uint64_t offset;  // inside the data section, aligned
  };
  // Validates a tensor declaration (1 to 4 non-negative dims, rows of whole blocks, a unique
  // name) and appends it to the table; returns the new entry.
  const TensorEntry& declare(const std::string& name, TensorType type, std::vector<int64_t> ne);
  // Header, metadata and tensor table, zero-padded to the alignment (data_offset() bytes).
  std::vector<uint8_t> encode_header() const;
  // After this, set() and declare() throw (the header has been written).
  void freeze(const char* why) { frozen_ = why; }

  uint32_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<TensorEntry> tensors_;
  uint64_t data_size_ = 0;        // aligned end of the last tensor in the data section
  const char* frozen_ = nullptr;  // why declarations are closed, or nullptr
};

// Builds a GGUF (version 3) file in memory: metadata in insertion order, tensors aligned.
class Writer : public WriterBase {
 public:
  explicit Writer(uint32_t alignment = 32);

  // Adds a tensor from raw bytes already in `type`'s encoding (size must match ne).
  void add_raw(const std::string& name, TensorType type, std::vector<int64_t> ne,
               std::vector<uint8_t> bytes);
  // Adds a tensor from f32 values, encoded as `type` (any type gguf::quantize_row writes).
  void add_f32(const std::string& name, TensorType type, std::vector<int64_t> ne,
               const float* values);
  void add_i32(const std::string& name, std::vector<int64_t> ne, const int32_t* values);

  std::vector<uint8_t> to_bytes() const;
  // Writes the file; throws Error when it cannot be written.
  void write(const std::string& path) const;

 private:
  std::vector<std::vector<uint8_t>> data_;  // parallel to tensors_
};

// Writes a GGUF (version 3) file without holding its tensor data: declare the metadata and
// every tensor (name, type, ne) first, call begin(path) to write the header and tensor table
// (offsets computed from the declarations), then hand over each tensor's bytes in declaration
// order, in as many write_tensor_data() / write_tensor_f32() chunks as convenient, and call
// finish(). The result is byte-identical to Writer::to_bytes() for the same content.
//
// Misuse throws fastkv::Error ("GGUF stream writer: ..."): data for a tensor other than the
// next one in declaration order, more bytes than a tensor holds, finish() with tensors not (or
// not completely) written, declarations after begin(). File-system problems throw
// "<path>: cannot open for writing: ..." / "<path>: write failed: ...". If the writer is
// destroyed before finish() succeeded, a regular file it was writing is removed (a partial
// GGUF file is of no use to anyone); other outputs (devices, pipes) are left alone.
class StreamWriter : public WriterBase {
 public:
  explicit StreamWriter(uint32_t alignment = 32);
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // Declares the next tensor of the file.
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> ne);

  // Creates (or truncates) `path` and writes everything before the data section.
  void begin(const std::string& path);
  // Appends `n` bytes (already in the tensor's encoding) of tensor `name`, which must be the
  // next tensor not yet complete. Padding follows automatically once a tensor is complete.
  void write_tensor_data(const std::string& name, const void* bytes, size_t n);
  // Encodes `n` f32 values (a multiple of the type's block size) as the tensor's type
  // (any type gguf::quantize_row writes) and appends them.
  void write_tensor_f32(const std::string& name, const float* values, int64_t n);
  // Checks that every tensor is complete, flushes and closes the file.
  void finish();

  const std::string& path() const { return path_; }
  uint64_t bytes_written() const;  // so far, header included

 private:
  void advance_past_complete();

  struct Sink;
  std::unique_ptr<Sink> sink_;
  std::string path_;
  size_t next_ = 0;            // index of the first tensor not yet complete
  uint64_t next_written_ = 0;  // bytes of tensors_[next_] written so far
  bool finished_ = false;
  std::vector<uint8_t> scratch_;  // encoding buffer for write_tensor_f32
};

}  // namespace fastkv::gguf
