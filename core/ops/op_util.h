// Helpers shared by the op entries in core/ops/ (not part of the public API).
#pragma once
#include <vector>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/kernels.h"

namespace ember::ops::detail {

inline Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.device()); }

inline void check_defined(const char* op, const Tensor& t, const char* what) {
  EMBER_CHECK(t.defined(), op << ": " << what << " is undefined");
}

inline void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a, "first input");
  check_defined(op, b, "second input");
  EMBER_CHECK(a.shape() == b.shape(), op << ": shapes differ: " << a.shape() << " and " << b.shape());
}

inline void check_rank(const char* op, const Tensor& t, int rank, const char* layout) {
  check_defined(op, t, layout);
  EMBER_CHECK(t.dim() == rank, op << ": expected " << layout << " (rank " << rank << "), got " << t.shape());
}

}  // namespace ember::ops::detail
