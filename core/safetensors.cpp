// safetensors writer (atomic: .tmp + fsync + rename) and validating reader. Format and choices are
// described in core/safetensors.h. Integers and floats are encoded byte by byte, little-endian, so
// the code does not depend on the host's byte order; the reader never trusts an offset or a size
// before checking it against the real file size.
#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace ember {
namespace {

// std::map-based: nlohmann::ordered_json finds keys by linear search, so a header with many keys
// took quadratic time (80k keys: 13 s). The reader records the file order itself, the writer
// writes its text in tensor order.
using Json = nlohmann::json;

// The Python package's limit: a larger header is treated as corrupt rather than parsed.
constexpr uint64_t kMaxHeaderBytes = 100000000;
// A valid header nests 3 deep (header object > entry object > shape array). Deeper nesting is
// refused while parsing: printing a deeply nested value in an error message would recurse.
constexpr int kMaxHeaderDepth = 8;

struct DtypeInfo {
  const char* name;
  uint64_t size;  // bytes per element
};
enum DtypeId { kF32, kF64, kF16, kBF16, kI64, kI32, kU8, kNumDtypes };
constexpr DtypeInfo kDtypes[kNumDtypes] = {{"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2},
                                           {"I64", 8}, {"I32", 4}, {"U8", 1}};

uint64_t load_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void store_le(unsigned char* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

template <class To, class From>
To bit_cast(From f) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast: sizes differ");
  To t;
  std::memcpy(&t, &f, sizeof t);
  return t;
}

// IEEE half -> float, exact for every half value (subnormals, infinities, NaN payload sign).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h >> 15) << 31;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  return bit_cast<float>(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

std::string sys_error() { return std::strerror(errno); }

// ---- writing --------------------------------------------------------------------------------

// Owns the .tmp file until commit(): any exception on the way closes and removes it.
class TmpFile {
 public:
  TmpFile(const std::string& final_path) : final_(final_path), tmp_(final_path + ".tmp") {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EMBER_CHECK(fd_ >= 0, "save_safetensors: cannot create '" << tmp_ << "': " << sys_error());
  }
  ~TmpFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  TmpFile(const TmpFile&) = delete;
  TmpFile& operator=(const TmpFile&) = delete;

  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      EMBER_CHECK(w > 0, "save_safetensors: writing '" << tmp_ << "' failed: " << sys_error());
      p += w;
      n -= static_cast<size_t>(w);
    }
  }

  // fsync the data, then rename over the final path: readers see the old file or the new one.
  void commit() {
    EMBER_CHECK(::fsync(fd_) == 0, "save_safetensors: fsync of '" << tmp_ << "' failed: " << sys_error());
    int rc = ::close(fd_);
    fd_ = -1;
    EMBER_CHECK(rc == 0, "save_safetensors: closing '" << tmp_ << "' failed: " << sys_error());
    EMBER_CHECK(::rename(tmp_.c_str(), final_.c_str()) == 0,
                "save_safetensors: renaming '" << tmp_ << "' to '" << final_ << "' failed: " << sys_error());
    committed_ = true;
    // Make the rename itself durable. Best effort: the file is complete whatever happens here.
    auto slash = final_.find_last_of('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : final_.substr(0, slash));
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  std::string final_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // The header first: every check happens before a byte touches the disk. Its text is put
  // together entry by entry, in tensor order (linear time whatever the number of tensors).
  std::string text = "{";
  auto append = [&](const std::string& key, const auto& value) {
    try {
      text += (text.size() > 1 ? "," : "") + Json(key).dump() + ":" + value.dump();
    } catch (const nlohmann::json::exception& e) {  // invalid UTF-8 in a name or a metadata string
      EMBER_FAIL("save_safetensors: '" << path << "': a tensor name or metadata string is not valid UTF-8 ("
                                       << e.what() << ")");
    }
  };
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& kv : metadata) meta[kv.first] = kv.second;
    append("__metadata__", meta);
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& nt : tensors) {
    const std::string& name = nt.first;
    const Tensor& t = nt.second;
    EMBER_CHECK(!name.empty(), "save_safetensors: '" << path << "': empty tensor name");
    EMBER_CHECK(name != "__metadata__",
                "save_safetensors: '" << path << "': '__metadata__' is reserved, not a tensor name");
    EMBER_CHECK(seen.insert(name).second, "save_safetensors: '" << path << "': duplicate tensor name '" << name << "'");
    EMBER_CHECK(t.defined(), "save_safetensors: '" << path << "': tensor '" << name << "' is undefined");
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * 4;
    // Fields in the order the Python package writes them (a small ordered_json: 3 keys).
    append(name, nlohmann::ordered_json{
                     {"dtype", "F32"}, {"shape", t.shape().vec()}, {"data_offsets", {offset, offset + bytes}}});
    offset += bytes;
  }
  text += "}";
  // Space padding so the data buffer starts 8-byte aligned, as the Python package writes it.
  text.append((8 - text.size() % 8) % 8, ' ');

  TmpFile out(path);
  unsigned char prefix[8];
  store_le(prefix, text.size(), 8);
  out.write(prefix, 8);
  out.write(text.data(), text.size());
  std::vector<unsigned char> buf;
  for (const auto& nt : tensors) {
    const std::vector<float> v = nt.second.to_vector();  // one tensor on the host at a time
    buf.resize(v.size() * 4);
    for (size_t i = 0; i < v.size(); ++i) store_le(&buf[4 * i], bit_cast<uint32_t>(v[i]), 4);
    out.write(buf.data(), buf.size());
  }
  out.commit();
}

// ---- reading --------------------------------------------------------------------------------

// Every reader error starts with the file's name; `path` is in scope wherever these are used.
#define LOAD_CHECK(cond, msg) EMBER_CHECK(cond, "load_safetensors: '" << path << "': " << msg)
#define LOAD_FAIL(msg) LOAD_CHECK(false, msg)

namespace {

std::vector<unsigned char> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  LOAD_CHECK(fd >= 0, "cannot open: " << sys_error());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  LOAD_CHECK(::fstat(fd, &st) == 0, "cannot stat: " << sys_error());
  LOAD_CHECK(S_ISREG(st.st_mode), "not a regular file");
  std::vector<unsigned char> bytes(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t r = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (r < 0 && errno == EINTR) continue;
    LOAD_CHECK(r >= 0, "read failed: " << sys_error());
    if (r == 0) break;  // the file shrank while we read it: validation below sees the real size
    got += static_cast<size_t>(r);
  }
  bytes.resize(got);
  return bytes;
}

// Parses the header, rejecting duplicate keys at any depth (a plain parse keeps only one of them,
// which would let two entries for one name disagree silently) and nesting deeper than
// kMaxHeaderDepth. `top_keys` receives the header's own keys in file order.
Json parse_header(const std::string& path, const char* first, const char* last, std::vector<std::string>* top_keys) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string duplicate;
  auto cb = [&](int depth, Json::parse_event_t ev, Json& parsed) {
    if (ev == Json::parse_event_t::object_start || ev == Json::parse_event_t::array_start)
      LOAD_CHECK(depth < kMaxHeaderDepth, "header nests deeper than " << kMaxHeaderDepth << " levels");
    if (ev == Json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (ev == Json::parse_event_t::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (ev == Json::parse_event_t::key && !keys.empty() && parsed.is_string()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(k).second && duplicate.empty()) duplicate = k;
      if (depth == 1) top_keys->push_back(k);
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(first, last, cb);
  } catch (const nlohmann::json::exception& e) {
    LOAD_FAIL("header is not valid JSON: " << e.what());
  }
  LOAD_CHECK(duplicate.empty(), "duplicate key '" << duplicate << "' in header");
  LOAD_CHECK(header.is_object(), "header must be a JSON object, got " << header.type_name());
  return header;
}

// A JSON number that is a non-negative integer, or fails naming `what`.
uint64_t json_uint(const std::string& path, const std::string& what, const Json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) LOAD_FAIL(what << " is negative (" << v.get<int64_t>() << ")");
  LOAD_FAIL(what << " must be a non-negative integer, got " << v.type_name() << " " << v.dump());
}

const Json& field(const std::string& path, const std::string& tn, const Json& entry, const char* key) {
  auto it = entry.find(key);
  LOAD_CHECK(it != entry.end(), tn << " is missing '" << key << "'");
  return *it;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const Json& v) {
  LOAD_CHECK(v.is_object(), "__metadata__ must be an object of strings, got " << v.type_name());
  std::map<std::string, std::string> out;
  for (const auto& kv : v.items()) {
    LOAD_CHECK(kv.value().is_string(),
               "__metadata__ value for '" << kv.key() << "' must be a string, got " << kv.value().type_name());
    out[kv.key()] = kv.value().get<std::string>();
  }
  return out;
}

// One tensor entry, checked against the size of the data buffer.
SafetensorsFile::Entry parse_entry(const std::string& path, const std::string& name, const Json& v,
                                   uint64_t data_size) {
  const std::string tn = "tensor '" + name + "'";
  LOAD_CHECK(v.is_object(), tn << " must be a JSON object, got " << v.type_name());
  SafetensorsFile::Entry e;

  const Json& dt = field(path, tn, v, "dtype");
  LOAD_CHECK(dt.is_string(), tn << ": dtype must be a string, got " << dt.type_name());
  const std::string& dts = dt.get_ref<const std::string&>();
  e.dtype = -1;
  for (int i = 0; i < kNumDtypes; ++i)
    if (dts == kDtypes[i].name) e.dtype = i;
  LOAD_CHECK(e.dtype >= 0, tn << ": unsupported dtype '" << dts << "' (supported: F32, F64, F16, BF16, I64, I32, U8)");

  const Json& sh = field(path, tn, v, "shape");
  LOAD_CHECK(sh.is_array(), tn << ": shape must be an array, got " << sh.type_name());
  LOAD_CHECK(sh.size() <= static_cast<size_t>(Shape::kMaxDims),
             tn << ": shape has rank " << sh.size() << ", ember supports at most " << Shape::kMaxDims);
  // The product of the non-zero dimensions times the dtype size must fit in int64 (so Shape::numel
  // cannot overflow either); then a zero dimension makes the tensor empty.
  std::vector<int64_t> dims;
  bool zero = false;
  int64_t nbytes = static_cast<int64_t>(kDtypes[e.dtype].size);
  for (size_t i = 0; i < sh.size(); ++i) {
    const uint64_t d = json_uint(path, tn + ": shape dimension " + std::to_string(i), sh[i]);
    LOAD_CHECK(d <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                   (d == 0 || !__builtin_mul_overflow(nbytes, static_cast<int64_t>(d), &nbytes)),
               tn << ": shape " << sh.dump() << " is huge: its byte count overflows int64");
    zero = zero || d == 0;
    dims.push_back(static_cast<int64_t>(d));
  }
  if (zero) nbytes = 0;
  e.shape = Shape(dims);

  const Json& off = field(path, tn, v, "data_offsets");
  LOAD_CHECK(off.is_array() && off.size() == 2, tn << ": data_offsets must be [begin, end], got " << off.dump());
  e.begin = json_uint(path, tn + ": data_offsets begin", off[0]);
  e.end = json_uint(path, tn + ": data_offsets end", off[1]);
  LOAD_CHECK(e.begin <= e.end, tn << ": data_offsets [" << e.begin << ", " << e.end << "] have begin > end");
  LOAD_CHECK(e.end <= data_size, tn << ": data_offsets end " << e.end << " is beyond the data buffer of "
                                    << data_size << " bytes (file truncated?)");
  LOAD_CHECK(e.end - e.begin == static_cast<uint64_t>(nbytes),
             tn << ": data_offsets span " << e.end - e.begin << " bytes but shape " << e.shape << " of " << dts
                << " needs " << nbytes << " bytes");
  return e;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) { return load_safetensors_bytes(read_file(path), path); }

SafetensorsFile load_safetensors_bytes(std::vector<unsigned char> file, const std::string& path) {
  auto bytes = std::make_shared<std::vector<unsigned char>>(std::move(file));
  const uint64_t file_size = bytes->size();
  LOAD_CHECK(file_size >= 8, "file is " << file_size << " bytes, shorter than the 8-byte header length");
  const uint64_t n = load_le(bytes->data(), 8);
  LOAD_CHECK(n <= kMaxHeaderBytes, "header length " << n << " is absurd (limit " << kMaxHeaderBytes << " bytes)");
  LOAD_CHECK(n <= file_size - 8,
             "header length " << n << " exceeds the " << file_size - 8 << " bytes after the length prefix");
  const uint64_t data_size = file_size - 8 - n;
  const char* text = reinterpret_cast<const char*>(bytes->data() + 8);
  std::vector<std::string> keys;  // the header's keys in file order
  const Json header = parse_header(path, text, text + n, &keys);

  SafetensorsFile f;
  f.path = path;
  f.bytes_ = bytes;
  f.data_start_ = 8 + n;
  try {
    std::vector<std::string> order;  // header order, the tie-break for equal offsets
    for (const std::string& key : keys) {
      const Json& value = header.at(key);
      if (key == "__metadata__") {
        f.metadata = parse_metadata(path, value);
      } else {
        f.entries_[key] = parse_entry(path, key, value, data_size);
        order.push_back(key);
      }
    }
    // The tensors must tile the data buffer exactly: no overlap, no hole, nothing after the last.
    std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
      const auto &ea = f.entries_.at(a), &eb = f.entries_.at(b);
      return ea.begin != eb.begin ? ea.begin < eb.begin : ea.end < eb.end;
    });
    uint64_t covered = 0;
    std::string prev;
    for (const std::string& name : order) {
      const auto& e = f.entries_.at(name);
      LOAD_CHECK(e.begin >= covered, "tensor '" << name << "' [" << e.begin << ", " << e.end << ") overlaps tensor '"
                                                << prev << "' (which ends at " << covered << ")");
      LOAD_CHECK(e.begin == covered,
                 "data bytes [" << covered << ", " << e.begin << ") belong to no tensor (gap before '" << name << "')");
      covered = e.end;
      prev = name;
    }
    LOAD_CHECK(covered == data_size, "data buffer has " << data_size << " bytes but the tensors cover only "
                                                        << covered << " (trailing bytes)");
    f.names = std::move(order);
  } catch (const nlohmann::json::exception& e) {
    // Every JSON access above is type-checked first; this is a safety net, not an expected path.
    LOAD_FAIL("malformed header: " << e.what());
  }
  return f;
}

#undef LOAD_FAIL
#undef LOAD_CHECK

const SafetensorsFile::Entry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    std::string some;
    for (size_t i = 0; i < names.size() && i < 5; ++i) some += (i ? ", '" : "'") + names[i] + "'";
    if (names.size() > 5) some += ", ...";
    EMBER_FAIL("checkpoint '" << path << "' has no tensor '" << name << "' (it holds " << names.size()
                              << " tensors" << (names.empty() ? "" : ": ") << some << ")");
  }
  return it->second;
}

Shape SafetensorsFile::shape_of(const std::string& name) const { return entry(name).shape; }

std::string SafetensorsFile::dtype_of(const std::string& name) const { return kDtypes[entry(name).dtype].name; }

void SafetensorsFile::check_shape(const std::string& name, const Shape& expected) const {
  const Shape& s = entry(name).shape;
  EMBER_CHECK(s == expected, "checkpoint '" << path << "': tensor '" << name << "' has shape " << s
                                            << ", model expects " << expected);
}

Tensor SafetensorsFile::get(const std::string& name, Device device) const {
  const Entry& e = entry(name);
  const unsigned char* p = bytes_->data() + data_start_ + e.begin;  // range validated at load
  const size_t n = static_cast<size_t>(e.shape.numel());
  std::vector<float> v(n);
  switch (e.dtype) {
    case kF32:
      for (size_t i = 0; i < n; ++i) v[i] = bit_cast<float>(static_cast<uint32_t>(load_le(p + 4 * i, 4)));
      break;
    case kF64:
      for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(bit_cast<double>(load_le(p + 8 * i, 8)));
      break;
    case kF16:
      for (size_t i = 0; i < n; ++i) v[i] = half_to_float(static_cast<uint16_t>(load_le(p + 2 * i, 2)));
      break;
    case kBF16:  // bfloat16 is the top half of a float32
      for (size_t i = 0; i < n; ++i) v[i] = bit_cast<float>(static_cast<uint32_t>(load_le(p + 2 * i, 2) << 16));
      break;
    case kI64:
      for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(static_cast<int64_t>(load_le(p + 8 * i, 8)));
      break;
    case kI32:
      for (size_t i = 0; i < n; ++i)
        v[i] = static_cast<float>(static_cast<int32_t>(static_cast<uint32_t>(load_le(p + 4 * i, 4))));
      break;
    case kU8:
      for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(p[i]);
      break;
    default:
      EMBER_FAIL("checkpoint '" << path << "': tensor '" << name << "' has an invalid dtype index " << e.dtype);
  }
  return Tensor::from_vector(v, e.shape, device);
}

Tensor SafetensorsFile::get(const std::string& name, const Shape& expected, Device device) const {
  check_shape(name, expected);
  return get(name, device);
}

}  // namespace ember
