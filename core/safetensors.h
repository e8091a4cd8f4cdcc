// safetensors I/O: saving and loading named float32 tensors in the format of the Python
// `safetensors` package (https://huggingface.co/docs/safetensors), for checkpoints and golden files.
//
// File layout (all integers little-endian):
//   [8 bytes: u64 N][N bytes: JSON header, space-padded so that N % 8 == 0][data buffer]
//   header = {"__metadata__": {"key": "value", ...},              (optional, strings only)
//             "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//   Offsets are bytes relative to the start of the data buffer.
//
// Choices made here:
// - Order: the writer lays the data out in the order of the vector it is given, and writes the
//   header keys in that order too ("__metadata__" first). SafetensorsFile::names lists tensors in
//   data order, so a file written by ember reads back with the names in the order they were saved.
// - dtypes: the writer writes F32 only. Integers such as a step counter go into "__metadata__" as
//   decimal strings (this is what the Python package does for its own metadata): one tensor dtype
//   keeps ember's Tensor float32-only. The reader accepts F32, F64, F16, BF16, I64, I32 and U8 and
//   converts them to float32 (F64 values outside float range become +-inf; integers above 2^24
//   lose precision). Other safetensors dtypes (BOOL, I8, F8_*, ...) are rejected by name.
// - Validation follows the Python package's rules: the data buffer must be exactly covered by the
//   tensors (no overlap, no hole, no trailing bytes), the header is at most 100,000,000 bytes.
//   Duplicate keys anywhere in the header are detected while parsing and rejected. Unknown extra
//   fields inside a tensor entry are ignored, as the Python package does. Rank is limited to 5
//   (ember's Shape). Every failure throws ember::Error naming the file and what was wrong.
// - Loading reads the whole file into memory once (shared by copies of the SafetensorsFile);
//   get() converts one tensor. Checkpoints here are tens of MB, so no mmap.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace ember {

struct SafetensorsFile;
SafetensorsFile load_safetensors(const std::string& path);
// The same validation of a file's bytes already in memory (the fuzz target's entry); `path`
// only names the file in messages.
SafetensorsFile load_safetensors_bytes(std::vector<unsigned char> bytes, const std::string& path);

// Writes `tensors` (CPU or CUDA, copied to the host) and `metadata` to `path`.
// Requires: names unique, non-empty and not "__metadata__"; every tensor defined.
// Ensures: atomic replacement: the bytes go to `path + ".tmp"`, which is fsynced and then renamed
// over `path`; on any failure the .tmp file is removed and `path` is left as it was.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// A loaded, fully validated safetensors file.
struct SafetensorsFile {
  std::string path;                              // as given to load_safetensors, for messages
  std::map<std::string, std::string> metadata;   // "__metadata__", empty when absent
  std::vector<std::string> names;                // tensor names in data order

  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  Shape shape_of(const std::string& name) const;
  std::string dtype_of(const std::string& name) const;  // "F32", "BF16", ...
  // The tensor converted to float32, on `device`. Throws if `name` is absent.
  Tensor get(const std::string& name, Device device = Device::CPU) const;
  // Throws unless `name` exists with shape `expected`:
  //   "checkpoint 'p': tensor 'x' has shape [3, 4], model expects [4, 3]".
  void check_shape(const std::string& name, const Shape& expected) const;
  // check_shape then get: the usual way to restore a parameter.
  Tensor get(const std::string& name, const Shape& expected, Device device = Device::CPU) const;

  // Where one tensor lies in the file (validated by load_safetensors).
  struct Entry {
    int dtype = 0;       // index into the reader's dtype table
    Shape shape;
    uint64_t begin = 0;  // byte offsets into the data buffer
    uint64_t end = 0;
  };
 private:
  // Filled by load_safetensors.
  friend SafetensorsFile load_safetensors_bytes(std::vector<unsigned char> bytes, const std::string& path);
  const Entry& entry(const std::string& name) const;
  std::map<std::string, Entry> entries_;
  std::shared_ptr<const std::vector<unsigned char>> bytes_;  // the whole file
  uint64_t data_start_ = 0;                                   // 8 + header length
};

// Reads and validates `path`. Throws ember::Error naming the file and the problem.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace ember
