// CUDA GEMM (cuBLAS) against the CPU: all transposes, alpha/beta, odd sizes, batched and
// shared-left-operand, with TF32 on (1e-2) and off (1e-5); gradients through matmul and linear.
#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test;
using namespace ember::test::gpu;

namespace {

struct Mnk {
  int64_t M, N, K;
};
const Mnk kSizes[] = {{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {17, 13, 11}, {64, 64, 64}, {129, 67, 255}, {3, 300, 1000}};

void compare_matmul(const Mnk& s, int64_t batch, bool a_batched, bool ta, bool tb, float alpha, float beta, bool tf32,
                    uint64_t seed) {
  Tf32Scope scope(tf32);
  auto with_batch = [&](bool b, int64_t r, int64_t c) { return b ? Shape{batch, r, c} : Shape{r, c}; };
  const bool batched = batch > 0;
  Tensor a = random_tensor(with_batch(batched && a_batched, ta ? s.K : s.M, ta ? s.M : s.K), seed);
  Tensor b = random_tensor(with_batch(batched, tb ? s.N : s.K, tb ? s.K : s.N), seed + 1);
  // beta == 0 must ignore C (NaN); otherwise C holds real values.
  Tensor c0 =
      beta == 0.f ? nan_tensor(with_batch(batched, s.M, s.N)) : random_tensor(with_batch(batched, s.M, s.N), seed + 2);
  std::string what = "matmul M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
                     " batch=" + std::to_string(batch) + (a_batched ? "" : " shared-a") + " ta=" + std::to_string(ta) +
                     " tb=" + std::to_string(tb) + " beta=" + std::to_string(beta) + (tf32 ? " tf32" : " fp32");
  compare_kernel(
      what, {a, b}, {c0},
      [=](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
        EMBER_DISPATCH("t", d, matmul, i[0], i[1], o[0], ta, tb, alpha, beta);
      },
      tf32 ? kTf32Tol : kFp32Tol);
}

}  // namespace

TEST_CASE("gemm: 2-D matmul for every transpose, alpha and beta, fp32 and TF32", "[cuda][gemm][cublas][library]") {
  uint64_t seed = 1;
  for (const Mnk& s : kSizes)
    for (int t = 0; t < 4; ++t)
      for (bool tf32 : {false, true}) {
        compare_matmul(s, 0, true, t & 1, t & 2, 1.f, 0.f, tf32, seed);
        compare_matmul(s, 0, true, t & 1, t & 2, -0.5f, 1.5f, tf32, seed + 10);
        seed += 20;
      }
}

TEST_CASE("gemm: batched matmul, and a 2-D left operand shared by the batch", "[cuda][gemm][cublas][library]") {
  uint64_t seed = 500;
  for (const Mnk& s : {Mnk{1, 1, 1}, Mnk{7, 5, 3}, Mnk{33, 17, 65}})
    for (int t = 0; t < 4; ++t)
      for (bool tf32 : {false, true}) {
        compare_matmul(s, 3, true, t & 1, t & 2, 1.f, 0.f, tf32, seed);
        compare_matmul(s, 4, false, t & 1, t & 2, 2.f, 0.5f, tf32, seed + 10);
        seed += 20;
      }
}

TEST_CASE("gemm: an empty inner dimension gives beta * C", "[cuda][gemm][cublas][library]") {
  Tensor a = Tensor::empty(Shape{3, 0}), b = Tensor::empty(Shape{0, 4});
  Tensor c = random_tensor(Shape{3, 4}, 9);
  compare_kernel("matmul K=0", {a, b}, {c}, [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
    EMBER_DISPATCH("t", d, matmul, i[0], i[1], o[0], false, false, 1.f, 0.5f);
  });
}

TEST_CASE("gemm: matmul and linear gradients match the CPU", "[cuda][gemm][autograd][cublas][library]") {
  Tf32Scope fp32(false);
  Tensor a = random_tensor(Shape{5, 7}, 1), b = random_tensor(Shape{7, 3}, 2);
  compare_op("matmul", [](const std::vector<Tensor>& v) { return ops::matmul(v[0], v[1]); }, {a, b});
  compare_op("matmul tt", [](const std::vector<Tensor>& v) { return ops::matmul(v[1], v[0], true, true); }, {a, b});
  Tensor ab = random_tensor(Shape{2, 5, 7}, 3), bb = random_tensor(Shape{2, 7, 3}, 4);
  compare_op("batched matmul", [](const std::vector<Tensor>& v) { return ops::matmul(v[0], v[1]); }, {ab, bb});
  compare_op("shared-a matmul", [](const std::vector<Tensor>& v) { return ops::matmul(v[0], v[1]); }, {a, bb});
  Tensor x = random_tensor(Shape{9, 13}, 5), w = random_tensor(Shape{6, 13}, 6), bias = random_tensor(Shape{6}, 7);
  compare_op("linear", [](const std::vector<Tensor>& v) { return ops::linear(v[0], v[1], v[2]); }, {x, w, bias});
}
