// How spectral normalisation views a weight as a matrix, shared by the op entry and both
// backends so the three agree on it by construction.
//
// torch.nn.utils.spectral_norm moves dimension `dim` to the front (permute) and flattens the
// rest in order (reshape): Wm [rows = w.size(dim), cols = numel / rows]. Without moving any
// data, w seen as [outer, rows, inner] (outer = product of the sizes before dim, inner = those
// after) gives
//     Wm[r][c] = w[(c / inner) * rows * inner + r * inner + c % inner],   c = o * inner + k.
// dim 0 (Linear, Conv2d): outer = 1, inner = cols, the ordinary row-major matrix.
// dim 1 of a ConvTranspose2d weight [in, out, kh, kw]: rows = out, cols run over (in, kh, kw).
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace ember {

struct SnLayout {
  int64_t outer = 1, rows = 1, inner = 1;
  int64_t cols() const { return outer * inner; }
  // Offset in w of column c's entry in row 0; row r adds r * inner.
  int64_t col_base(int64_t c) const { return (c / inner) * rows * inner + c % inner; }
  int64_t at(int64_t r, int64_t c) const { return col_base(c) + r * inner; }
};

// Assumes 0 <= dim < shape.rank() (the op entry checks it).
inline SnLayout sn_layout(const Shape& shape, int dim) {
  SnLayout l;
  for (int i = 0; i < dim; ++i) l.outer *= shape[i];
  l.rows = shape[dim];
  for (int i = dim + 1; i < shape.rank(); ++i) l.inner *= shape[i];
  return l;
}

}  // namespace ember
