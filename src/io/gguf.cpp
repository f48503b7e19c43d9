#include "io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "common/error.h"
#include "io/quant.h"

namespace fastkv::gguf {
namespace {

constexpr uint32_t kMaxDims = 4;         // ggml tensors have at most 4 dimensions
constexpr int kMaxArrayDepth = 8;        // nested arrays deeper than this are rejected
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;  // far above any real file's

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Bounds-checked little-endian reader over the file image.
class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size, const std::string& name)
      : base_(base), size_(size), name_(name) {}

  uint64_t pos() const { return pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > size_ - pos_) {
      fail(name_, ": truncated file: ", what, " needs ", n, " bytes at offset ", pos_,
           " but the file ends at ", size_);
    }
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& what) {
    uint64_t at = pos_;
    uint64_t len = read<uint64_t>("string length");
    if (len > size_ - pos_) {
      fail(name_, ": ", what, ": string length ", len, " at offset ", at,
           " runs past the end of the file (", size_, " bytes)");
    }
    std::string s(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& name_;
};

// Smallest encoded size of one element of an array of this type (to bound counts before
// allocating).
uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: return 8;
    case ValueType::ARRAY: return 12;
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

Value read_value(Cursor& c, ValueType type, const std::string& name, const std::string& key,
                 int depth) {
  Value v;
  v.type = type;
  switch (type) {
    case ValueType::UINT8: v.u = c.read<uint8_t>("u8 value"); break;
    case ValueType::INT8: v.i = c.read<int8_t>("i8 value"); break;
    case ValueType::UINT16: v.u = c.read<uint16_t>("u16 value"); break;
    case ValueType::INT16: v.i = c.read<int16_t>("i16 value"); break;
    case ValueType::UINT32: v.u = c.read<uint32_t>("u32 value"); break;
    case ValueType::INT32: v.i = c.read<int32_t>("i32 value"); break;
    case ValueType::UINT64: v.u = c.read<uint64_t>("u64 value"); break;
    case ValueType::INT64: v.i = c.read<int64_t>("i64 value"); break;
    case ValueType::FLOAT32: v.f = c.read<float>("f32 value"); break;
    case ValueType::FLOAT64: v.f = c.read<double>("f64 value"); break;
    case ValueType::BOOL: {
      uint8_t b = c.read<uint8_t>("bool value");
      if (b > 1) fail(name, ": key '", key, "': bool value ", int(b), " is neither 0 nor 1");
      v.b = b != 0;
      break;
    }
    case ValueType::STRING: v.str = c.read_string(cat("key '", key, "'")); break;
    case ValueType::ARRAY: {
      if (depth >= kMaxArrayDepth) {
        fail(name, ": key '", key, "': arrays nested deeper than ", kMaxArrayDepth, " levels");
      }
      uint32_t et = c.read<uint32_t>("array element type");
      if (!valid_value_type(et)) {
        fail(name, ": key '", key, "': unknown array element type ", et);
      }
      v.elem_type = static_cast<ValueType>(et);
      uint64_t at = c.pos();
      uint64_t count = c.read<uint64_t>("array length");
      uint64_t min_size = min_encoded_size(v.elem_type);
      if (count > 0 && count > (std::numeric_limits<uint64_t>::max() / min_size)) {
        fail(name, ": key '", key, "': array length ", count, " at offset ", at,
             " runs past the end of the file");
      }
      try {
        c.need(count * min_size, "array");
      } catch (const Error&) {
        fail(name, ": key '", key, "': array length ", count, " at offset ", at,
             " runs past the end of the file");
      }
      v.arr.reserve(count);
      for (uint64_t k = 0; k < count; ++k) {
        v.arr.push_back(read_value(c, v.elem_type, name, key, depth + 1));
      }
      break;
    }
  }
  return v;
}

}  // namespace

// Owns the bytes of the file: an mmap or a heap buffer.
struct File::Storage {
  void* map = nullptr;
  size_t map_size = 0;
  std::vector<uint8_t> bytes;
  ~Storage() {
    if (map) munmap(map, map_size);
  }
};

void File::release_tensor_pages() const {
  if (!storage_ || !storage_->map || data_offset_ >= size_) return;
  // From the first whole page of the data section (the metadata pages stay) to the end.
  release_pages(static_cast<const uint8_t*>(storage_->map) + data_offset_,
                storage_->map_size - data_offset_);
}

void File::release_pages(const uint8_t* data, uint64_t bytes) const {
  if (!storage_ || !storage_->map) return;
  const auto* base = static_cast<const uint8_t*>(storage_->map);
  if (data < base || data + bytes > base + storage_->map_size) return;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t first = static_cast<uint64_t>(data - base), last = first + bytes;
  const uint64_t begin = (first + page - 1) / page * page;
  // The mapping's last page is whole to madvise (the length rounds up) even where the file ends
  // inside it; a page other ranges share is kept.
  const uint64_t end = last == storage_->map_size ? last : last / page * page;
  if (end <= begin) return;
  madvise(static_cast<uint8_t*>(storage_->map) + begin, end - begin, MADV_DONTNEED);
}

// ---- Value ----------------------------------------------------------------------------------

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "u8";
    case ValueType::INT8: return "i8";
    case ValueType::UINT16: return "u16";
    case ValueType::INT16: return "i16";
    case ValueType::UINT32: return "u32";
    case ValueType::INT32: return "i32";
    case ValueType::FLOAT32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "u64";
    case ValueType::INT64: return "i64";
    case ValueType::FLOAT64: return "f64";
  }
  return "unknown";
}

bool Value::is_integer() const {
  switch (type) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64:
      return true;
    default: return false;
  }
}

static bool is_unsigned(ValueType t) {
  return t == ValueType::UINT8 || t == ValueType::UINT16 || t == ValueType::UINT32 ||
         t == ValueType::UINT64;
}

double Value::as_double() const {
  if (is_integer()) return is_unsigned(type) ? static_cast<double>(u) : static_cast<double>(i);
  if (is_float()) return f;
  if (type == ValueType::BOOL) return b ? 1.0 : 0.0;
  fail("a ", value_type_name(type), " value is not a number");
}

int64_t Value::as_int() const {
  if (is_integer()) {
    if (is_unsigned(type)) {
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail("integer value ", u, " is too large");
      }
      return static_cast<int64_t>(u);
    }
    return i;
  }
  if (is_float() && std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 9e18) {
    return static_cast<int64_t>(f);
  }
  if (type == ValueType::BOOL) return b ? 1 : 0;
  fail("a ", value_type_name(type), " value is not an integer");
}

Value Value::of_u8(uint8_t x) { Value v; v.type = ValueType::UINT8; v.u = x; return v; }
Value Value::of_i8(int8_t x) { Value v; v.type = ValueType::INT8; v.i = x; return v; }
Value Value::of_u16(uint16_t x) { Value v; v.type = ValueType::UINT16; v.u = x; return v; }
Value Value::of_i16(int16_t x) { Value v; v.type = ValueType::INT16; v.i = x; return v; }
Value Value::of_u32(uint32_t x) { Value v; v.type = ValueType::UINT32; v.u = x; return v; }
Value Value::of_i32(int32_t x) { Value v; v.type = ValueType::INT32; v.i = x; return v; }
Value Value::of_u64(uint64_t x) { Value v; v.type = ValueType::UINT64; v.u = x; return v; }
Value Value::of_i64(int64_t x) { Value v; v.type = ValueType::INT64; v.i = x; return v; }
Value Value::of_f32(float x) { Value v; v.type = ValueType::FLOAT32; v.f = x; return v; }
Value Value::of_f64(double x) { Value v; v.type = ValueType::FLOAT64; v.f = x; return v; }
Value Value::of_bool(bool x) { Value v; v.type = ValueType::BOOL; v.b = x; return v; }
Value Value::of_string(std::string x) {
  Value v;
  v.type = ValueType::STRING;
  v.str = std::move(x);
  return v;
}
Value Value::of_array(ValueType elem_type, std::vector<Value> elems) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = elem_type;
  v.arr = std::move(elems);
  return v;
}

std::string to_string(const Value& v, size_t max_elems) {
  switch (v.type) {
    case ValueType::STRING: {
      std::string s = v.str.size() > 60 ? v.str.substr(0, 57) + "..." : v.str;
      for (char& ch : s) {
        if (ch == '\n') ch = ' ';
      }
      return "\"" + s + "\"";
    }
    case ValueType::BOOL: return v.b ? "true" : "false";
    case ValueType::FLOAT32: case ValueType::FLOAT64: return cat(v.f);
    case ValueType::ARRAY: {
      std::string s = cat(value_type_name(v.elem_type), "[", v.arr.size(), "] [");
      for (size_t k = 0; k < v.arr.size() && k < max_elems; ++k) {
        if (k) s += ", ";
        s += to_string(v.arr[k], max_elems);
      }
      if (v.arr.size() > max_elems) s += ", ...";
      return s + "]";
    }
    default: return is_unsigned(v.type) ? cat(v.u) : cat(v.i);
  }
}

// ---- TensorInfo -----------------------------------------------------------------------------

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (size_t k = 0; k < ne.size(); ++k) s += (k ? ", " : "") + std::to_string(ne[k]);
  return s + "]";
}

// ---- File -----------------------------------------------------------------------------------

File File::open(const std::string& path) {
  File f;
  f.path_ = path;
  f.storage_ = std::make_shared<Storage>();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  f.size_ = static_cast<uint64_t>(st.st_size);
  if (f.size_ > 0) {
    void* m = mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail(path, ": cannot memory-map: ", std::strerror(e));
    }
    f.storage_->map = m;
    f.storage_->map_size = f.size_;
    f.base_ = static_cast<const uint8_t*>(m);
  }
  ::close(fd);
  f.parse();
  return f;
}

File File::from_bytes(std::string name, std::vector<uint8_t> bytes) {
  File f;
  f.path_ = std::move(name);
  f.storage_ = std::make_shared<Storage>();
  f.storage_->bytes = std::move(bytes);
  f.base_ = f.storage_->bytes.data();
  f.size_ = f.storage_->bytes.size();
  f.parse();
  return f;
}

void File::error(const std::string& message) const { fail(path_, ": ", message); }

void File::parse() {
  Cursor c(base_, size_, path_);
  if (size_ < 4) fail(path_, ": truncated file: ", size_, " bytes is too short for a GGUF header");
  uint32_t magic = c.read<uint32_t>("magic");
  if (std::memcmp(&magic, "GGUF", 4) != 0) {
    std::string shown;
    for (int k = 0; k < 4; ++k) {
      unsigned char ch = base_[k];
      shown += (ch >= 32 && ch < 127) ? std::string(1, static_cast<char>(ch))
                                       : cat("\\x", "0123456789abcdef"[ch >> 4],
                                             "0123456789abcdef"[ch & 15]);
    }
    fail(path_, ": not a GGUF file (magic is '", shown, "', expected 'GGUF')");
  }
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    if (version_ == 0x02000000u || version_ == 0x03000000u) {
      fail(path_, ": big-endian GGUF files are not supported");
    }
    fail(path_, ": unsupported GGUF version ", version_, " (fastkv reads versions 2 and 3)");
  }
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor entry
  // at least 8 + 4 + 4 + 8 bytes.
  if (n_kv > size_ / 13) fail(path_, ": metadata count ", n_kv, " runs past the end of the file");
  if (n_tensors > size_ / 24) {
    fail(path_, ": tensor count ", n_tensors, " runs past the end of the file");
  }

  std::unordered_set<std::string> keys;
  kv_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string(cat("metadata key #", k));
    uint32_t type = c.read<uint32_t>("value type");
    if (!valid_value_type(type)) fail(path_, ": key '", key, "': unknown value type ", type);
    Value v = read_value(c, static_cast<ValueType>(type), path_, key, 0);
    if (!keys.insert(key).second) fail(path_, ": duplicate metadata key '", key, "'");
    kv_.emplace_back(std::move(key), std::move(v));
  }

  alignment_ = kDefaultAlignment;
  if (const Value* a = find("general.alignment")) {
    // Read the value without as_int(), which would throw a message without the file name for
    // u64 values above INT64_MAX.
    uint64_t al = 0;
    if (a->is_integer()) al = is_unsigned(a->type) ? a->u : (a->i > 0 ? uint64_t(a->i) : 0);
    if (al == 0 || (al & (al - 1)) != 0 || al > kMaxAlignment) {
      fail(path_, ": general.alignment must be a power of two between 1 and ", kMaxAlignment,
           ", got ", to_string(*a));
    }
    alignment_ = al;
  }

  std::unordered_set<std::string> names;
  tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    t.name = c.read_string(cat("tensor name #", k));
    uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) {
      fail(path_, ": tensor '", t.name, "' has ", n_dims, " dimensions (1 to ", kMaxDims,
           " supported)");
    }
    uint64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = c.read<uint64_t>("tensor dimension");
      if (ne > (uint64_t{1} << 40) || (ne != 0 && n_elem > (uint64_t{1} << 50) / ne)) {
        fail(path_, ": tensor '", t.name, "' has an impossible dimension ", ne);
      }
      n_elem *= ne;
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    uint32_t type_id = c.read<uint32_t>("tensor type");
    const TypeInfo* info = type_info(type_id);
    if (!info) fail(path_, ": tensor '", t.name, "' has unknown tensor type ", type_id);
    t.type = static_cast<TensorType>(type_id);
    if (t.ne[0] % info->block_size != 0) {
      fail(path_, ": tensor '", t.name, "' of type ", info->name, " has rows of ", t.ne[0],
           " elements, not a multiple of the block size ", info->block_size);
    }
    t.nbytes = bytes_for(t.type, static_cast<int64_t>(n_elem));
    t.offset = c.read<uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0) {
      fail(path_, ": tensor '", t.name, "' offset ", t.offset, " is not a multiple of the alignment ",
           alignment_);
    }
    if (!names.insert(t.name).second) fail(path_, ": duplicate tensor name '", t.name, "'");
    tensors_.push_back(std::move(t));
  }

  data_offset_ = align_up(c.pos(), alignment_);
  if (n_tensors > 0 && data_offset_ > size_) {
    fail(path_, ": truncated file: the data section starts at ", data_offset_,
         " but the file ends at ", size_);
  }
  for (TensorInfo& t : tensors_) {
    uint64_t avail = size_ - std::min(size_, data_offset_);
    if (t.offset > avail || t.nbytes > avail - t.offset) {
      fail(path_, ": tensor '", t.name, "' data [", data_offset_ + t.offset, ", ",
           data_offset_ + t.offset + t.nbytes, ") lies outside the file (", size_, " bytes)");
    }
    t.data = base_ + data_offset_ + t.offset;
  }
  // Tensors must not overlap. Empty tensors occupy no bytes, so they overlap nothing (a writer
  // gives an empty tensor the same offset as the next one); sorted by start, two non-empty
  // ranges overlap exactly when some neighbouring pair does. Ties keep file order.
  std::vector<const TensorInfo*> order;
  for (const TensorInfo& t : tensors_) {
    if (t.nbytes > 0) order.push_back(&t);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo* prev = order[k - 1];
    if (order[k]->offset < prev->offset + prev->nbytes) {
      fail(path_, ": tensors '", prev->name, "' and '", order[k]->name, "' overlap");
    }
  }
}

const Value* File::find(std::string_view key) const {
  for (const auto& [k, v] : kv_) {
    if (k != key) continue;
    if (std::find(dropped_.begin(), dropped_.end(), key) != dropped_.end()) {
      error(cat("metadata key '", key, "' was read after its array was freed (drop_arrays)"));
    }
    return &v;
  }
  return nullptr;
}

void File::drop_arrays(size_t min_elements) {
  for (auto& [k, v] : kv_) {
    if (v.type != ValueType::ARRAY || v.arr.size() < min_elements) continue;
    std::vector<Value>().swap(v.arr);
    dropped_.push_back(k);
  }
}

namespace {
const Value& require(const File& f, std::string_view key) {
  const Value* v = f.find(key);
  if (!v) f.error(cat("missing required key '", key, "'"));
  return *v;
}
[[noreturn]] void wrong_type(const File& f, std::string_view key, const Value& v,
                             const char* expected) {
  f.error(cat("key '", key, "' has type ", value_type_name(v.type), ", expected ", expected));
}
}  // namespace

std::string File::get_string(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::STRING) wrong_type(*this, key, v, "string");
  return v.str;
}
std::string File::get_string(std::string_view key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}
int64_t File::get_int(std::string_view key) const {
  const Value& v = require(*this, key);
  if (!v.is_integer()) wrong_type(*this, key, v, "an integer");
  try {
    return v.as_int();
  } catch (const Error& e) {
    error(cat("key '", key, "': ", e.what()));
  }
}
int64_t File::get_int(std::string_view key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}
double File::get_float(std::string_view key) const {
  const Value& v = require(*this, key);
  if (!v.is_float() && !v.is_integer()) wrong_type(*this, key, v, "a number");
  return v.as_double();
}
double File::get_float(std::string_view key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}
bool File::get_bool(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::BOOL) wrong_type(*this, key, v, "bool");
  return v.b;
}
bool File::get_bool(std::string_view key, bool fallback) const {
  return has(key) ? get_bool(key) : fallback;
}
const std::vector<Value>& File::get_array(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::ARRAY) wrong_type(*this, key, v, "array");
  return v.arr;
}
std::vector<std::string> File::get_string_array(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::ARRAY || v.elem_type != ValueType::STRING) {
    wrong_type(*this, key, v, "array of strings");
  }
  std::vector<std::string> out;
  out.reserve(v.arr.size());
  for (const Value& e : v.arr) out.push_back(e.str);
  return out;
}
std::vector<double> File::get_float_array(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::ARRAY || v.elem_type == ValueType::STRING ||
      v.elem_type == ValueType::ARRAY) {
    wrong_type(*this, key, v, "array of numbers");
  }
  std::vector<double> out;
  out.reserve(v.arr.size());
  for (const Value& e : v.arr) out.push_back(e.as_double());
  return out;
}
std::vector<int64_t> File::get_int_array(std::string_view key) const {
  const Value& v = require(*this, key);
  Value elem;
  elem.type = v.elem_type;
  if (v.type != ValueType::ARRAY || !elem.is_integer()) {
    wrong_type(*this, key, v, "array of integers");
  }
  std::vector<int64_t> out;
  out.reserve(v.arr.size());
  try {
    for (const Value& e : v.arr) out.push_back(e.as_int());
  } catch (const Error& e) {
    error(cat("key '", key, "': ", e.what()));
  }
  return out;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorInfo& File::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) error(cat("missing tensor '", name, "'"));
  return *t;
}

std::vector<float> File::read_f32(const TensorInfo& t) const {
  const TypeInfo* info = type_info(static_cast<uint32_t>(t.type));
  if (!info || !info->can_dequantize) {
    error(cat("tensor '", t.name, "' has type ", type_name(t.type),
              ", which fastkv cannot convert to f32"));
  }
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  dequantize_row(t.type, t.data, out.data(), t.n_elements());
  return out;
}

std::vector<int32_t> File::read_i32(std::string_view name) const {
  const TensorInfo& t = tensor(name);
  if (t.type != TensorType::I32) {
    error(cat("tensor '", t.name, "' has type ", type_name(t.type), ", expected I32"));
  }
  std::vector<int32_t> out(static_cast<size_t>(t.n_elements()));
  if (!out.empty()) std::memcpy(out.data(), t.data, out.size() * sizeof(int32_t));
  return out;
}

// ---- Writers ---------------------------------------------------------------------------------

namespace {

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}
void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}
void put_value(std::vector<uint8_t>& out, const Value& v) {
  switch (v.type) {
    case ValueType::UINT8: put<uint8_t>(out, static_cast<uint8_t>(v.u)); break;
    case ValueType::INT8: put<int8_t>(out, static_cast<int8_t>(v.i)); break;
    case ValueType::UINT16: put<uint16_t>(out, static_cast<uint16_t>(v.u)); break;
    case ValueType::INT16: put<int16_t>(out, static_cast<int16_t>(v.i)); break;
    case ValueType::UINT32: put<uint32_t>(out, static_cast<uint32_t>(v.u)); break;
    case ValueType::INT32: put<int32_t>(out, static_cast<int32_t>(v.i)); break;
    case ValueType::UINT64: put<uint64_t>(out, v.u); break;
    case ValueType::INT64: put<int64_t>(out, v.i); break;
    case ValueType::FLOAT32: put<float>(out, static_cast<float>(v.f)); break;
    case ValueType::FLOAT64: put<double>(out, v.f); break;
    case ValueType::BOOL: put<uint8_t>(out, v.b ? 1 : 0); break;
    case ValueType::STRING: put_string(out, v.str); break;
    case ValueType::ARRAY:
      put<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
      put<uint64_t>(out, v.arr.size());
      for (const Value& e : v.arr) {
        if (e.type != v.elem_type) fail("GGUF writer: array element of the wrong type");
        put_value(out, e);
      }
      break;
  }
}

// Buffered output to a file descriptor; every failure is an Error naming the path and errno.
class FdSink {
 public:
  explicit FdSink(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(path, ": cannot open for writing: ", std::strerror(errno));
    struct stat st;
    regular_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
    buf_.reserve(kBufferSize);
  }
  ~FdSink() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdSink(const FdSink&) = delete;
  FdSink& operator=(const FdSink&) = delete;

  void write(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    if (buf_.size() + n > kBufferSize) flush();
    if (n >= kBufferSize) {
      write_all(p, n);
    } else {
      buf_.insert(buf_.end(), p, p + n);
    }
    total_ += n;
  }
  void zeros(size_t n) {
    static const uint8_t kZeros[256] = {};
    while (n > 0) {
      size_t k = std::min(n, sizeof kZeros);
      write(kZeros, k);
      n -= k;
    }
  }
  // Flushes and closes; throws on any failure (a full disk often shows only here).
  void close() {
    flush();
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(path_, ": write failed: ", std::strerror(errno));
  }
  bool regular() const { return regular_; }
  bool open() const { return fd_ >= 0; }
  uint64_t total() const { return total_; }

 private:
  static constexpr size_t kBufferSize = size_t{4} << 20;

  void flush() {
    write_all(buf_.data(), buf_.size());
    buf_.clear();
  }
  void write_all(const uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t k = ::write(fd_, p, std::min<size_t>(n, size_t{1} << 30));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        fail(path_, ": write failed after ", written_, " bytes: ",
             k < 0 ? std::strerror(errno) : "no progress");
      }
      p += k;
      n -= static_cast<size_t>(k);
      written_ += static_cast<uint64_t>(k);
    }
  }

  std::string path_;
  int fd_ = -1;
  bool regular_ = false;
  std::vector<uint8_t> buf_;
  uint64_t total_ = 0;    // bytes accepted
  uint64_t written_ = 0;  // bytes handed to the kernel
};

}  // namespace

WriterBase::WriterBase(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    fail("GGUF writer: alignment must be a power of two, got ", alignment);
  }
  if (alignment != kDefaultAlignment) set_u32("general.alignment", alignment);
}

void WriterBase::set(const std::string& key, Value v) {
  if (frozen_) fail("GGUF writer: cannot set metadata key '", key, "' ", frozen_);
  for (auto& [k, old] : kv_) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  kv_.emplace_back(key, std::move(v));
}

void WriterBase::set_string_array(const std::string& key, const std::vector<std::string>& v) {
  std::vector<Value> elems;
  elems.reserve(v.size());
  for (const std::string& s : v) elems.push_back(Value::of_string(s));
  set(key, Value::of_array(ValueType::STRING, std::move(elems)));
}
void WriterBase::set_f32_array(const std::string& key, const std::vector<float>& v) {
  std::vector<Value> elems;
  for (float x : v) elems.push_back(Value::of_f32(x));
  set(key, Value::of_array(ValueType::FLOAT32, std::move(elems)));
}
void WriterBase::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  std::vector<Value> elems;
  for (int32_t x : v) elems.push_back(Value::of_i32(x));
  set(key, Value::of_array(ValueType::INT32, std::move(elems)));
}

const WriterBase::TensorEntry& WriterBase::declare(const std::string& name, TensorType type,
                                                   std::vector<int64_t> ne) {
  if (frozen_) fail("GGUF writer: cannot add tensor '", name, "' ", frozen_);
  if (ne.empty() || ne.size() > kMaxDims) {
    fail("GGUF writer: tensor '", name, "' needs 1 to 4 dims");
  }
  const TypeInfo* info = type_info(static_cast<uint32_t>(type));
  if (!info) fail("GGUF writer: tensor '", name, "' has unknown tensor type ", uint32_t(type));
  int64_t n = 1;
  for (int64_t d : ne) {
    if (d < 0 || d > (int64_t{1} << 40) || (d != 0 && n > (int64_t{1} << 50) / d)) {
      fail("GGUF writer: tensor '", name, "' has an impossible dimension ", d);
    }
    n *= d;
  }
  if (ne[0] % info->block_size != 0) {
    fail("GGUF writer: tensor '", name, "' of type ", info->name, " has rows of ", ne[0],
         " elements, not a multiple of the block size ", info->block_size);
  }
  for (const TensorEntry& t : tensors_) {
    if (t.name == name) fail("GGUF writer: duplicate tensor '", name, "'");
  }
  const uint64_t nbytes = bytes_for(type, n);
  tensors_.push_back({name, type, std::move(ne), nbytes, data_size_});
  data_size_ = align_up(data_size_ + nbytes, alignment_);
  return tensors_.back();
}

std::vector<uint8_t> WriterBase::encode_header() const {
  std::vector<uint8_t> out;
  out.insert(out.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kv_.size());
  for (const auto& [k, v] : kv_) {
    put_string(out, k);
    put<uint32_t>(out, static_cast<uint32_t>(v.type));
    put_value(out, v);
  }
  for (const TensorEntry& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put<uint64_t>(out, static_cast<uint64_t>(d));
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, t.offset);
  }
  out.resize(align_up(out.size(), alignment_), 0);
  return out;
}

uint64_t WriterBase::data_offset() const { return encode_header().size(); }

uint64_t WriterBase::file_size() const { return data_offset() + data_size_; }

Writer::Writer(uint32_t alignment) : WriterBase(alignment) {}

void Writer::add_raw(const std::string& name, TensorType type, std::vector<int64_t> ne,
                     std::vector<uint8_t> bytes) {
  if (ne.empty() || ne.size() > kMaxDims) fail("GGUF writer: tensor '", name, "' needs 1 to 4 dims");
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  if (bytes.size() != bytes_for(type, n)) {
    fail("GGUF writer: tensor '", name, "' has ", bytes.size(), " bytes, expected ",
         bytes_for(type, n));
  }
  declare(name, type, std::move(ne));
  data_.push_back(std::move(bytes));
}

void Writer::add_f32(const std::string& name, TensorType type, std::vector<int64_t> ne,
                     const float* values) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  add_raw(name, type, std::move(ne), quantize(type, values, n));
}

void Writer::add_i32(const std::string& name, std::vector<int64_t> ne, const int32_t* values) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  std::vector<uint8_t> bytes(static_cast<size_t>(n) * 4);
  if (n) std::memcpy(bytes.data(), values, bytes.size());
  add_raw(name, TensorType::I32, std::move(ne), std::move(bytes));
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint8_t> out = encode_header();
  out.reserve(out.size() + data_size_);
  for (const std::vector<uint8_t>& bytes : data_) {
    out.insert(out.end(), bytes.begin(), bytes.end());
    out.resize(align_up(out.size(), alignment_), 0);
  }
  return out;
}

void Writer::write(const std::string& path) const {
  std::vector<uint8_t> bytes = to_bytes();
  FdSink sink(path);
  sink.write(bytes.data(), bytes.size());
  sink.close();
}

// ---- StreamWriter ------------------------------------------------------------------------------

struct StreamWriter::Sink : FdSink {
  using FdSink::FdSink;
};

StreamWriter::StreamWriter(uint32_t alignment) : WriterBase(alignment) {}

StreamWriter::~StreamWriter() {
  if (sink_ && !finished_) {
    const bool remove = sink_->regular();
    sink_.reset();  // closes the descriptor
    if (remove) ::unlink(path_.c_str());
  }
}

void StreamWriter::add_tensor(const std::string& name, TensorType type, std::vector<int64_t> ne) {
  declare(name, type, std::move(ne));
}

void StreamWriter::begin(const std::string& path) {
  if (sink_ || finished_) fail("GGUF stream writer: begin() called twice");
  std::vector<uint8_t> header = encode_header();
  path_ = path;
  sink_ = std::make_unique<Sink>(path);
  freeze("after begin() wrote the header");
  sink_->write(header.data(), header.size());
  next_ = 0;
  next_written_ = 0;
  advance_past_complete();
}

void StreamWriter::advance_past_complete() {
  while (next_ < tensors_.size() && next_written_ == tensors_[next_].nbytes) {
    const TensorEntry& t = tensors_[next_];
    sink_->zeros(align_up(t.nbytes, alignment_) - t.nbytes);
    ++next_;
    next_written_ = 0;
  }
}

void StreamWriter::write_tensor_data(const std::string& name, const void* bytes, size_t n) {
  if (finished_) fail("GGUF stream writer: data for tensor '", name, "' after finish()");
  if (!sink_) fail("GGUF stream writer: data for tensor '", name, "' before begin()");
  if (next_ == tensors_.size() || tensors_[next_].name != name) {
    size_t k = 0;
    while (k < tensors_.size() && tensors_[k].name != name) ++k;
    if (k == tensors_.size()) fail("GGUF stream writer: tensor '", name, "' was never declared");
    if (k < next_) {
      if (n == 0) return;  // an empty chunk for a finished tensor changes nothing
      fail("GGUF stream writer: tensor '", name, "' is already complete (",
           tensors_[k].nbytes, " bytes)");
    }
    fail("GGUF stream writer: data for tensor '", name, "' while tensor '", tensors_[next_].name,
         "' is next (tensors are written in declaration order)");
  }
  const TensorEntry& t = tensors_[next_];
  if (n > t.nbytes - next_written_) {
    fail("GGUF stream writer: tensor '", name, "': ", n, " more bytes after ", next_written_,
         " exceed its size of ", t.nbytes, " bytes");
  }
  sink_->write(bytes, n);
  next_written_ += n;
  advance_past_complete();
}

void StreamWriter::write_tensor_f32(const std::string& name, const float* values, int64_t n) {
  const TensorEntry* t = nullptr;
  for (const TensorEntry& e : tensors_) {
    if (e.name == name) t = &e;
  }
  if (!t) fail("GGUF stream writer: tensor '", name, "' was never declared");
  if (n < 0) fail("GGUF stream writer: tensor '", name, "': negative element count ", n);
  uint64_t nbytes = 0;
  try {
    nbytes = bytes_for(t->type, n);
  } catch (const Error& e) {
    fail("GGUF stream writer: tensor '", name, "': ", e.what());
  }
  scratch_.resize(nbytes);
  quantize_row(t->type, values, scratch_.data(), n);
  write_tensor_data(name, scratch_.data(), scratch_.size());
}

void StreamWriter::finish() {
  if (finished_) fail("GGUF stream writer: finish() called twice");
  if (!sink_) fail("GGUF stream writer: finish() before begin()");
  if (next_ < tensors_.size()) {
    const TensorEntry& t = tensors_[next_];
    fail("GGUF stream writer: ", path_, ": tensor '", t.name, "' has ", next_written_, " of its ",
         t.nbytes, " bytes (", tensors_.size() - next_, " of ", tensors_.size(),
         " tensors incomplete)");
  }
  sink_->close();
  finished_ = true;
  sink_.reset();
}

uint64_t StreamWriter::bytes_written() const {
  if (finished_) return file_size();
  return sink_ ? sink_->total() : 0;
}

}  // namespace fastkv::gguf
