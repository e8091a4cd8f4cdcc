// Shape: up to 5 dimensions, row-major (the last dimension is contiguous).
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "core/error.h"

namespace ember {

class Shape {
 public:
  static constexpr int kMaxDims = 5;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[norm(i)]; }
  int64_t& operator[](int i) { return dims_[norm(i)]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  std::vector<int64_t> vec() const { return std::vector<int64_t>(dims_.begin(), dims_.begin() + rank_); }
  bool operator==(const Shape& o) const {
    if (rank_ != o.rank_) return false;
    for (int i = 0; i < rank_; ++i)
      if (dims_[i] != o.dims_[i]) return false;
    return true;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
    return s + "]";
  }

 private:
  template <class It>
  void assign(It b, It e) {
    EMBER_CHECK(e - b <= kMaxDims, "Shape: at most " << kMaxDims << " dimensions, got " << (e - b));
    rank_ = 0;
    for (It it = b; it != e; ++it) {
      EMBER_CHECK(*it >= 0, "Shape: negative dimension " << *it);
      dims_[rank_++] = *it;
    }
  }
  int norm(int i) const {
    int j = i < 0 ? i + rank_ : i;
    EMBER_CHECK(j >= 0 && j < rank_, "Shape: dimension " << i << " out of range for rank " << rank_);
    return j;
  }
  std::array<int64_t, kMaxDims> dims_{};
  int rank_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

}  // namespace ember
