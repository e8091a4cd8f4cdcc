// Softmax on CUDA against the CPU reference: every variant over its whole range of row
// lengths, 16-byte and misaligned (scalar) loads, -inf and large inputs, and the op with
// autograd. Outputs are filled with NaN first so an element left unwritten cannot pass.
// The launchers run on ember's stream (cuda_rt::stream(): they assert it, the one-stream
// invariant of core/cuda/cuda_context.cuh); the blocking cudaMemcpy in and out of the buffers is
// fenced by cudaDeviceSynchronize on both sides.
#include <catch2/catch.hpp>

#include <cuda_runtime_api.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/cuda/cuda_context.cuh"
#include "kernels/cuda/softmax.cuh"
#include "kernels/kernels.h"
#include "tests/cuda/compare.h"
#include "tests/harness.h"

using namespace ember;
using cuda::SoftmaxVariant;
using test::gpu::kSanitized;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// A device copy of a host vector at an offset of `shift` floats into a fresh buffer (shift 1
// makes the data 4 bytes past a 16-byte boundary, forcing the kernels' scalar path).
struct DeviceArray {
  Tensor buf;
  float* p = nullptr;
  int64_t n = 0;
  DeviceArray(const std::vector<float>& host, int shift) : n(static_cast<int64_t>(host.size())) {
    buf = Tensor::full(Shape{n + shift}, kNaN, Device::CUDA);
    p = buf.data() + shift;
    // The fill runs on ember's stream, the copy below on the default one: wait for the fill.
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    if (n > 0) REQUIRE(cudaMemcpy(p, host.data(), n * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  std::vector<float> host() const {
    std::vector<float> h(n);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    if (n > 0) REQUIRE(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
    return h;
  }
};

double rel(const std::vector<float>& out, const Tensor& ref) {
  return test::rel_err(Tensor::from_vector(out, ref.shape()), ref);
}

// Row lengths that cover each variant's range, its size classes and their edges.
std::vector<int64_t> lengths_for(SoftmaxVariant v) {
  switch (v) {
    case SoftmaxVariant::WarpRegisters:
      return {1, 2, 3, 4, 5, 7, 8, 12, 13, 16, 17, 31, 32, 33, 64, 100, 128, 129, 255, 256, 257, 512, 513, 1000, 1023, 1024};
    case SoftmaxVariant::BlockShared: {
      const int64_t limit = cuda::softmax_max_cols(v, true);  // the smaller of forward and backward
      return {1, 7, 33, 1000, 1025, 2048, 4096, 4097, 10000, limit - 3, limit};
    }
    default:
      // 262147: the scalar path over many loads per thread; under sanitizers 40003 does that too
      // (1024 threads, 39 loads each).
      return {1, 7, 1000, 1025, 4096, 4097, 70000, kSanitized ? 40003 : 262147};
  }
}

// Enough rows to fill several blocks for short rows (a warp-variant block takes 4..128 rows), a
// few for long ones; under sanitizers, where each element costs ~50x, still more than one block
// and a partial last one.
int64_t rows_for(int64_t cols) {
  if (kSanitized) return std::max<int64_t>(2, std::min<int64_t>(133, 20000 / cols));
  return std::max<int64_t>(3, std::min<int64_t>(301, 600000 / cols));
}

void check_variant(SoftmaxVariant v, int64_t rows, int64_t cols, int shift, uint64_t seed) {
  CAPTURE(cuda::softmax_variant_name(v), rows, cols, shift);
  Tensor x = test::random_tensor(Shape{rows, cols}, seed, -8.f, 8.f);
  Tensor y = Tensor::empty(x.shape());
  cpu::softmax_forward(x, y);
  DeviceArray dx_in(x.to_vector(), shift), dy_out(std::vector<float>(rows * cols, kNaN), shift);
  cuda::softmax_forward_launch(dx_in.p, dy_out.p, rows, cols, v, cuda_rt::stream());
  CHECK(rel(dy_out.host(), y) < 1e-5);

  Tensor g = test::random_tensor(Shape{rows, cols}, seed + 1);
  Tensor dx = Tensor::empty(x.shape());
  cpu::softmax_backward(y, g, dx);
  DeviceArray d_y(y.to_vector(), shift), d_g(g.to_vector(), shift), d_dx(std::vector<float>(rows * cols, kNaN), shift);
  cuda::softmax_backward_launch(d_y.p, d_g.p, d_dx.p, rows, cols, v, cuda_rt::stream());
  if (cols == 1) {
    for (float e : d_dx.host()) CHECK(e == 0.0f);  // exactly 0 (the reference's norm is 0)
  } else {
    CHECK(rel(d_dx.host(), dx) < 1e-5);
  }
}

const SoftmaxVariant kVariants[] = {SoftmaxVariant::WarpRegisters, SoftmaxVariant::BlockShared,
                                    SoftmaxVariant::BlockStreaming, SoftmaxVariant::Auto};

}  // namespace

TEST_CASE("softmax: every CUDA variant matches the CPU over its row lengths (16-byte loads)", "[softmax][cuda]") {
  uint64_t seed = 100;
  for (SoftmaxVariant v : kVariants)
    for (int64_t cols : lengths_for(v == SoftmaxVariant::Auto ? SoftmaxVariant::BlockStreaming : v))
      check_variant(v, rows_for(cols), cols, 0, seed += 2);
}

TEST_CASE("softmax: every CUDA variant matches the CPU on misaligned data (scalar loads)", "[softmax][cuda]") {
  uint64_t seed = 200;
  for (SoftmaxVariant v : kVariants)
    for (int64_t cols : {4, 8, 128, 1024, 4096}) {
      if (v == SoftmaxVariant::BlockShared || v == SoftmaxVariant::WarpRegisters)
        if (cols > cuda::softmax_max_cols(v, true)) continue;
      check_variant(v, 33, cols, 1, seed += 2);
    }
}

TEST_CASE("softmax: a variant refuses rows longer than it can hold", "[softmax][cuda]") {
  Tensor buf = Tensor::zeros(Shape{2048}, Device::CUDA);
  CHECK_THROWS_WITH(
      cuda::softmax_forward_launch(buf.data(), buf.data(), 1, 1025, SoftmaxVariant::WarpRegisters, cuda_rt::stream()),
      Catch::Contains("takes rows up to 1024"));
}

// The one-stream invariant (core/cuda/cuda_context.cuh) is asserted, not assumed: a launcher given
// any stream but the context's refuses before launching anything.
TEST_CASE("softmax: a launcher refuses a stream other than ember's", "[softmax][cuda]") {
  Tensor buf = Tensor::zeros(Shape{64}, Device::CUDA);
  CHECK_THROWS_WITH(cuda::softmax_forward_launch(buf.data(), buf.data(), 2, 32, SoftmaxVariant::Auto, nullptr),
                    Catch::Contains("softmax_forward_launch") && Catch::Contains("context's stream"));
  CHECK_THROWS_WITH(cuda::softmax_backward_launch(buf.data(), buf.data(), buf.data(), 2, 32, SoftmaxVariant::Auto,
                                                   nullptr),
                    Catch::Contains("softmax_backward_launch"));
}

TEST_CASE("softmax: CUDA -inf and large inputs match the CPU in every variant", "[softmax][cuda]") {
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t cols : {7, 64, 1000, 4096}) {
    const int64_t rows = 4;
    std::vector<float> x = test::random_tensor(Shape{rows, cols}, 300 + cols, 9000.f, 10000.f).to_vector();
    for (int64_t c = 0; c < cols; c += 3) x[c] = -inf;   // row 0: a third masked
    x[cols] = -inf;                                      // row 1: the first entry masked
    for (int64_t c = 0; c < cols; ++c) x[2 * cols + c] = -inf;  // row 2: all masked -> NaN
    Tensor xt = Tensor::from_vector(x, Shape{rows, cols});
    Tensor y = Tensor::empty(xt.shape());
    cpu::softmax_forward(xt, y);
    std::vector<float> yc = y.to_vector();
    for (SoftmaxVariant v : kVariants) {
      if (cuda::softmax_max_cols(v, false) >= 0 && cols > cuda::softmax_max_cols(v, false)) continue;
      CAPTURE(cols, cuda::softmax_variant_name(v));
      DeviceArray dx(x, 0), dy(std::vector<float>(x.size(), 0.5f), 0);
      cuda::softmax_forward_launch(dx.p, dy.p, rows, cols, v, cuda_rt::stream());
      std::vector<float> yg = dy.host();
      double num = 0, den = 0;
      bool nan_where_expected = true;
      for (size_t i = 0; i < yg.size(); ++i) {
        if (std::isnan(yc[i]) || std::isnan(yg[i])) {
          nan_where_expected &= std::isnan(yc[i]) && std::isnan(yg[i]);
          continue;
        }
        num += (yg[i] - yc[i]) * (yg[i] - yc[i]);
        den += static_cast<double>(yc[i]) * yc[i];
        if (x[i] == -inf) CHECK(yg[i] == 0.0f);
      }
      CHECK(nan_where_expected);
      CHECK(std::sqrt(num / den) < 1e-5);
    }
  }
}

TEST_CASE("softmax: ops::softmax on CUDA with autograd matches the CPU", "[softmax][cuda]") {
  // 80000 (60000 under sanitizers): longer than BlockShared takes forward, so Auto streams.
  for (int64_t cols : {int64_t{5}, int64_t{256}, int64_t{3000}, int64_t{kSanitized ? 60000 : 80000}}) {
    CAPTURE(cols);
    Tensor xc = test::random_param(Shape{2, 3, cols}, 400 + cols, -4.f, 4.f);
    Tensor xg = xc.detach().to(Device::CUDA);
    xg.requires_grad_();
    Tensor r = test::random_tensor(Shape{2, 3, cols}, 500 + cols);
    Tensor yc = ops::softmax(xc), yg = ops::softmax(xg);
    CHECK(test::rel_err(yg.to(Device::CPU), yc) < 1e-5);
    ops::sum(ops::mul(yc, r)).backward();
    ops::sum(ops::mul(yg, r.to(Device::CUDA))).backward();
    CHECK(test::rel_err(xg.grad().to(Device::CPU), xc.grad()) < 1e-5);
  }
}

TEST_CASE("softmax: a NaN or +Inf makes its row NaN on CUDA as on the CPU", "[softmax][cuda][nonfinite]") {
  for (int64_t cols : {5, 37, 1024, 5000}) {
    Tensor x = test::random_tensor(Shape{6, cols}, 91, -4.f, 4.f);
    std::vector<float> v = x.to_vector();
    v[size_t(cols / 2)] = kNaN;                                        // row 0
    v[size_t(cols)] = kNaN;                                            // row 1, first entry
    v[size_t(2 * cols + cols - 1)] = std::numeric_limits<float>::infinity();  // row 2, last entry
    v[size_t(3 * cols + 1 % cols)] = -std::numeric_limits<float>::infinity();  // row 3: -Inf is fine
    x = Tensor::from_vector(v, x.shape());
    test::gpu::compare_op_nonfinite("softmax cols=" + std::to_string(cols), [](const std::vector<Tensor>& i) { return ops::softmax(i[0]); },
                         {x});
  }
}
