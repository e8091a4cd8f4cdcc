// Kernel lab: row softmax, from a naive port to the production kernels.
//
//   nvcc -std=c++17 -O3 -arch=sm_90 --expt-relaxed-constexpr -I. kernels/lab/softmax.cu -o lab_softmax
//   ./lab_softmax [--version K|all] [--rows R] [--cols C] [--block T] [--runs N]
//
// (from the repository root; CMake builds it as lab_softmax, and as lab_softmax_emu on the CPU
// emulation of CUDA, which runs every version without a GPU: docs/kernels.md, "The kernel lab").
//
// y[r][j] = exp(x[r][j] - m_r) / sum_k exp(x[r][k] - m_r),  m_r = max_k x[r][k];  x, y [rows, cols].
// Memory-bound: the floor is reading x once and writing y once (8 bytes per element) at copy speed.
//
// The ladder (--block sets the threads per block of versions 1-4):
//   1. naive        a thread per row, three passes over the row in global memory; neighbouring
//                   threads read addresses cols apart, so no load is coalesced.
//   2. block-tree   a block per row: threads stride over the row (coalesced) and the block combines
//                   its partial max and sum by a tree in shared memory (log2(block) barriers).
//   3. warp-shuffle a warp per row: the partials are combined by __shfl_xor_sync butterflies, in
//                   registers, with no shared memory and no __syncthreads.
//   4. online       a block per row, max and sum in ONE pass with the online rescaling
//                   s' = s e^(m - m') + e^(x - m'), then one pass to write y: x read twice, not three
//                   times.
//   5-7. the production variants of kernels/cuda/softmax.cu (WarpRegisters, BlockShared,
//                   BlockStreaming), compiled from that file: they keep the row on chip (registers or
//                   shared memory) and read x once, with 16-byte loads.
#include "kernels/lab/lab.cuh"
#include "kernels/cuda/softmax.cu"  // the shipped kernels and launchers (ember::cuda)

namespace lab {

// ---- 1. naive: a thread per row -------------------------------------------------------------------
__global__ void softmax_naive(const float* x, float* y, int rows, int cols) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float* xr = x + static_cast<size_t>(r) * cols;
  float* yr = y + static_cast<size_t>(r) * cols;
  float m = -INFINITY;
  for (int j = 0; j < cols; ++j) m = fmaxf(m, xr[j]);
  float s = 0.f;
  for (int j = 0; j < cols; ++j) s += expf(xr[j] - m);
  for (int j = 0; j < cols; ++j) yr[j] = expf(xr[j] - m) / s;
}

// ---- 2. a block per row, tree reduction in shared memory (blockDim a power of two) ----------------
__global__ void softmax_block_tree(const float* x, float* y, int cols) {
  EMBER_DYNAMIC_SHARED(float, red);  // [blockDim.x]
  const float* xr = x + static_cast<size_t>(blockIdx.x) * cols;
  float* yr = y + static_cast<size_t>(blockIdx.x) * cols;
  const int t = threadIdx.x;
  float m = -INFINITY;
  for (int j = t; j < cols; j += blockDim.x) m = fmaxf(m, xr[j]);
  red[t] = m;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {  // halve the active threads each step
    if (t < half) red[t] = fmaxf(red[t], red[t + half]);
    __syncthreads();
  }
  m = red[0];
  __syncthreads();  // everyone has read red[0] before it is overwritten below
  float s = 0.f;
  for (int j = t; j < cols; j += blockDim.x) s += expf(xr[j] - m);
  red[t] = s;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) red[t] += red[t + half];
    __syncthreads();
  }
  s = red[0];
  for (int j = t; j < cols; j += blockDim.x) yr[j] = expf(xr[j] - m) / s;
}

// ---- 3. a warp per row, butterfly shuffles -------------------------------------------------------
__global__ void softmax_warp_shuffle(const float* x, float* y, int rows, int cols) {
  const int lane = threadIdx.x % 32;
  const int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (r >= rows) return;  // the whole warp leaves together: the shuffles below see every lane
  const float* xr = x + static_cast<size_t>(r) * cols;
  float* yr = y + static_cast<size_t>(r) * cols;
  float m = -INFINITY;
  for (int j = lane; j < cols; j += 32) m = fmaxf(m, xr[j]);
  for (int o = 16; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));  // all lanes get the max
  float s = 0.f;
  for (int j = lane; j < cols; j += 32) s += expf(xr[j] - m);
  for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
  for (int j = lane; j < cols; j += 32) yr[j] = expf(xr[j] - m) / s;
}

// ---- 4. online softmax: max and sum in one pass ----------------------------------------------------
// (m, s) stands for "the exponentials seen so far sum to s e^m". Merging two pairs re-bases both
// sums on the larger maximum; while both are empty (m = -inf) the pair stays (-inf, 0), since
// e^(-inf - -inf) would be NaN.
__device__ __forceinline__ void online_merge(float& m, float& s, float m2, float s2) {
  const float mn = fmaxf(m, m2);
  if (mn == -INFINITY) return;
  s = s * expf(m - mn) + s2 * expf(m2 - mn);
  m = mn;
}

__global__ void softmax_online(const float* x, float* y, int cols) {
  EMBER_SHARED(float, wm, [32]);
  EMBER_SHARED(float, ws, [32]);
  const float* xr = x + static_cast<size_t>(blockIdx.x) * cols;
  float* yr = y + static_cast<size_t>(blockIdx.x) * cols;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  float m = -INFINITY, s = 0.f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) online_merge(m, s, xr[j], 1.f);  // pass 1 over x
  for (int o = 16; o > 0; o /= 2) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    online_merge(m, s, m2, s2);
  }
  if (lane == 0) wm[warp] = m, ws[warp] = s;
  __syncthreads();
  m = -INFINITY, s = 0.f;
  for (int w = 0; w < nwarps; ++w) online_merge(m, s, wm[w], ws[w]);  // every thread, same order
  for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = expf(xr[j] - m) / s;  // pass 2 over x
}

// ---- the CPU reference, in double ---------------------------------------------------------------
std::vector<double> reference(const std::vector<float>& x, int rows, int cols) {
  std::vector<double> y(x.size());
  for (int r = 0; r < rows; ++r) {
    const float* xr = &x[static_cast<size_t>(r) * cols];
    double m = -INFINITY, s = 0;
    for (int j = 0; j < cols; ++j) m = std::max(m, static_cast<double>(xr[j]));
    for (int j = 0; j < cols; ++j) s += std::exp(xr[j] - m);
    for (int j = 0; j < cols; ++j) y[static_cast<size_t>(r) * cols + j] = std::exp(xr[j] - m) / s;
  }
  return y;
}

int main_(int argc, char** argv) {
  Flags f(argc, argv);
  const int rows = f.get("--rows", kEmulated ? 6 : 16384);
  const int cols = f.get("--cols", kEmulated ? 1000 : 1024);
  const Flags::Common c = f.common(7, 256, 100);  // 7 versions; default --block 256, --runs 100
  f.done();

  print_banner("softmax", "rows " + std::to_string(rows) + ", cols " + std::to_string(cols));
  const std::vector<float> x = random_vector(static_cast<size_t>(rows) * cols, 1, -8.f, 8.f);
  const std::vector<double> ref = reference(x, rows, cols);
  const double bytes = 8.0 * rows * cols;  // read x, write y
  Rotated xs(x, rotation(4.0 * rows * cols));
  Buf y(static_cast<size_t>(rows) * cols);
  const unsigned row_blocks = static_cast<unsigned>(rows);
  const bool pow2 = (c.block & (c.block - 1)) == 0;

  using ember::cuda::SoftmaxVariant;
  auto production = [&](SoftmaxVariant v) {
    return [&, v](int i) { ember::cuda::softmax_forward_launch(xs[i], y.get(), rows, cols, v, nullptr); };
  };
  auto fits = [&](SoftmaxVariant v) -> std::string {
    const int64_t limit = ember::cuda::softmax_max_cols(v, false);
    return limit < 0 || cols <= limit ? "" : "takes rows up to " + std::to_string(limit) + " floats on this device";
  };
  std::vector<Version> versions = {
      {"naive", "a thread per row, three uncoalesced passes",
       [&](int i) {
         EMBER_LAUNCH((rows + c.block - 1) / c.block, c.block, 0, nullptr, softmax_naive)(xs[i], y.get(), rows, cols);
         EMBER_CUDA_LAUNCH_CHECK();
       }},
      {"block-tree", "a block per row, tree reduction in shared memory",
       [&](int i) {
         EMBER_LAUNCH(row_blocks, c.block, c.block * sizeof(float), nullptr, softmax_block_tree)(xs[i], y.get(), cols);
         EMBER_CUDA_LAUNCH_CHECK();
       },
       pow2 ? "" : "the tree needs a power-of-two --block"},
      {"warp-shuffle", "a warp per row, butterfly shuffles",
       [&](int i) {
         const int per_block = c.block / 32;
         EMBER_LAUNCH((rows + per_block - 1) / per_block, c.block, 0, nullptr, softmax_warp_shuffle)(xs[i], y.get(),
                                                                                                 rows, cols);
         EMBER_CUDA_LAUNCH_CHECK();
       }},
      {"online", "a block per row, max and sum in one pass (online)",
       [&](int i) {
         EMBER_LAUNCH(row_blocks, c.block, 0, nullptr, softmax_online)(xs[i], y.get(), cols);
         EMBER_CUDA_LAUNCH_CHECK();
       }},
      {"prod warp-registers", "production: the row in registers, float4 loads",
       production(SoftmaxVariant::WarpRegisters), fits(SoftmaxVariant::WarpRegisters)},
      {"prod block-shared", "production: the row cached in shared memory",
       production(SoftmaxVariant::BlockShared), fits(SoftmaxVariant::BlockShared)},
      {"prod block-streaming", "production: online max/sum, any row length",
       production(SoftmaxVariant::BlockStreaming)},
  };
  // expf in a float sum of up to cols terms: a few ulp per element, growing slowly with cols.
  const double tol = 1e-5;
  return run_ladder(
      versions, c.version, [&] { y.fill_nan(); }, [&](int) { return check("y", y.download(), ref, tol); },
      Work{bytes, 0}, c.runs);
}

}  // namespace lab

int main(int argc, char** argv) { return lab::guarded_main(lab::main_, argc, argv); }
