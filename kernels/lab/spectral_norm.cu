// Kernel lab: one spectral-norm power-iteration step, from PyTorch's launch sequence to the
// production two-launch kernels.
//
//   nvcc -std=c++17 -O3 -arch=sm_90 --expt-relaxed-constexpr -I. kernels/lab/spectral_norm.cu -lcublas -o lab_spectral_norm
//   ./lab_spectral_norm [--version K|all] [--rows R] [--cols C] [--inner I] [--block T] [--runs N]
//
// (from the repository root; CMake builds it as lab_spectral_norm, and as lab_spectral_norm_emu on
// the CPU emulation of CUDA, which runs every version without a GPU: docs/kernels.md, "The kernel
// lab"). The weight is seen as Wm [rows, cols] with Wm[r][c] = w[(c / inner) rows inner +
// r inner + c % inner] (kernels/spectral_norm_layout.h): --inner cols (the default) is a Linear or
// Conv2d weight (dim 0), a divisor of cols is a ConvTranspose2d weight (dim 1).
//
//   v = normalize(Wm^T u),  u = normalize(Wm v),  sigma = u . (Wm v),  normalize(a) = a / max(|a|, eps)
//
// Memory-bound (4 flops per 4-byte weight): the floor is reading W twice (the second product needs
// all of v), at copy speed; for small W the number of launches matters as much as the bytes.
//
// The ladder:
//   1. pytorch-seq   the ~13 launches torch.nn.utils.spectral_norm issues (cuBLAS gemv, then a norm,
//                    clamp and divide per normalisation, clones, sigma, w / sigma), from
//                    kernels/cuda/spectral_norm_unfused.cu, the benchmark's baseline.
//   2. single-block  the whole step in ONE launch of ONE block (--block threads): no launch gaps and
//                    no cross-block reduction to organise, but one multiprocessor does all the work.
//   3. prod step     kernels/cuda/spectral_norm.cu: two launches over the whole GPU; the partial
//                    sums of each pass are finished on the device by the last block to arrive
//                    (a ticket: __threadfence + atomicAdd), no host synchronisation.
//   4. prod forward  3 + the production w / sigma: what the layer runs (compare with 1).
#include "kernels/lab/lab.cuh"
#include "kernels/cuda/spectral_norm.cu"          // the shipped fused kernels (ember::cuda)
#include "kernels/cuda/spectral_norm_unfused.cu"  // PyTorch's sequence through cuBLAS

namespace lab {

// ---- 2. the whole step in one block --------------------------------------------------------------
// u (rows) is read by pass 1 and overwritten at the end; v (cols) written by pass 1.
__global__ void sn_single_block(const float* w, int rows, int cols, int inner, float eps, float* u, float* v,
                                float* sigma) {
  EMBER_SHARED(float, scratch, [32]);
  auto at = [=](int r, int c) {  // Wm[r][c]
    return w[static_cast<int64_t>(c / inner) * rows * inner + static_cast<int64_t>(r) * inner + c % inner];
  };
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  // pass 1: v' = Wm^T u, a thread per column (consecutive threads, consecutive columns: coalesced)
  float ssq = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    float acc = 0.f;
    for (int r = 0; r < rows; ++r) acc += at(r, c) * u[r];
    v[c] = acc;
    ssq += acc * acc;
  }
  const float nv = fmaxf(sqrtf(ember::cuda::block_sum(ssq, scratch)), eps);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) v[c] /= nv;  // each thread its own columns
  __syncthreads();  // pass 2 reads every column of v
  // pass 2: t = Wm v, a warp per row, the lanes' partial dots added by shuffles; t kept in u
  float tsq = 0.f;
  for (int r = warp; r < rows; r += nwarps) {
    float acc = 0.f;
    for (int c = lane; c < cols; c += 32) acc += at(r, c) * v[c];
    acc = ember::cuda::group_sum(acc);
    if (lane == 0) {
      u[r] = acc;
      tsq += acc * acc;
    }
  }
  const float nt = fmaxf(sqrtf(ember::cuda::block_sum(tsq, scratch)), eps);  // (its barrier orders u)
  float dot = 0.f;
  for (int r = threadIdx.x; r < rows; r += blockDim.x) {
    const float t = u[r];
    u[r] = t / nt;
    dot += u[r] * t;
  }
  dot = ember::cuda::block_sum(dot, scratch);
  if (threadIdx.x == 0) *sigma = dot;
}

// Version 1's cuBLAS handle (RAII).
struct CublasHandle {
  cublasHandle_t h = nullptr;
  CublasHandle() { EMBER_CUBLAS_CHECK(cublasCreate(&h)); }
  ~CublasHandle() { cublasDestroy(h); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
};

// ---- the CPU reference, in double ---------------------------------------------------------------
struct Ref {
  std::vector<double> u, v, w_sn, sigma;
};
Ref reference(const std::vector<float>& w, int rows, int cols, int inner, const std::vector<float>& u0, double eps) {
  auto at = [&](int r, int c) {
    return static_cast<double>(w[static_cast<size_t>(c / inner) * rows * inner + static_cast<size_t>(r) * inner + c % inner]);
  };
  Ref out;
  out.v.assign(cols, 0.0);
  out.u.assign(rows, 0.0);
  double nv = 0, nt = 0, sigma = 0;
  for (int c = 0; c < cols; ++c) {
    for (int r = 0; r < rows; ++r) out.v[c] += at(r, c) * u0[r];
    nv += out.v[c] * out.v[c];
  }
  nv = std::max(std::sqrt(nv), eps);
  for (double& x : out.v) x /= nv;
  std::vector<double> t(rows, 0.0);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) t[r] += at(r, c) * out.v[c];
    nt += t[r] * t[r];
  }
  nt = std::max(std::sqrt(nt), eps);
  for (int r = 0; r < rows; ++r) {
    out.u[r] = t[r] / nt;
    sigma += out.u[r] * t[r];
  }
  out.sigma = {sigma};
  for (float x : w) out.w_sn.push_back(x / sigma);
  return out;
}

int main_(int argc, char** argv) {
  Flags f(argc, argv);
  const int rows = f.get("--rows", kEmulated ? 24 : 512);
  const int cols = f.get("--cols", kEmulated ? 72 : 4608);
  const int inner = f.get("--inner", cols);
  const Flags::Common c = f.common(4, 1024, 200);  // 4 versions; default --block 1024, --runs 200
  f.done();
  if (cols % inner != 0) Flags::usage_error("--inner must divide --cols, got " + std::to_string(inner));

  print_banner("spectral norm", "Wm " + std::to_string(rows) + " x " + std::to_string(cols) + ", inner " +
                                    std::to_string(inner));
  const size_t n = static_cast<size_t>(rows) * cols;
  const float eps = 1e-12f;
  const std::vector<float> w = random_vector(n, 1);
  std::vector<float> u0 = random_vector(rows, 2);
  double norm = 0;
  for (float x : u0) norm += static_cast<double>(x) * x;
  for (float& x : u0) x = static_cast<float>(x / std::sqrt(norm));
  const Ref ref = reference(w, rows, cols, inner, u0, eps);

  Rotated ws(w, rotation(4.0 * n));
  Buf u(rows), v(cols), sigma(1), w_sn(n);
  const ember::cuda::SnDims d{rows, cols, inner};
  Buf work(static_cast<size_t>(
      std::max(ember::cuda::sn_workspace_floats(d), ember::cuda::sn_unfused_workspace_floats(d))));
  CublasHandle cublas;

  std::vector<Version> versions = {
      {"pytorch-seq", "PyTorch's ~13 launches: cuBLAS gemv, norm, clamp, divide, clones, w / sigma",
       [&](int i) { ember::cuda::sn_unfused_forward(cublas.h, ws[i], d, eps, u.get(), v.get(), sigma.get(), w_sn.get(),
                                                     work.get(), nullptr); },
       "", 16.0 * n},
      {"single-block", "one launch of one block: both passes and every reduction",
       [&](int i) {
         EMBER_LAUNCH(1, c.block, 0, nullptr, sn_single_block)(ws[i], rows, cols, inner, eps, u.get(), v.get(), sigma.get());
         EMBER_CUDA_LAUNCH_CHECK();
       }},
      {"prod step", "production: two launches over the whole GPU, ticketed reductions",
       [&](int i) { ember::cuda::sn_power_iteration_launch(ws[i], d, eps, u.get(), v.get(), sigma.get(), work.get(), nullptr); }},
      {"prod forward", "production step + w / sigma (what the layer runs)",
       [&](int i) {
         ember::cuda::sn_power_iteration_launch(ws[i], d, eps, u.get(), v.get(), sigma.get(), work.get(), nullptr);
         ember::cuda::sn_scale_launch(ws[i], sigma.get(), w_sn.get(), static_cast<int64_t>(n), nullptr);
       },
       "", 16.0 * n},
  };
  const Buf u_start(u0);
  const double tol = 2e-5;  // fp32 sums of rows or cols products against double
  return run_ladder(
      versions, c.version,
      [&] {
        EMBER_CUDA_CHECK(cudaMemcpy(u.get(), u_start.get(), rows * sizeof(float), cudaMemcpyDeviceToDevice));
        v.fill_nan();
        sigma.fill_nan();
        w_sn.fill_nan();
      },
      [&](int ver) {
        bool ok = check("u", u.download(), ref.u, tol);
        ok = check("v", v.download(), ref.v, tol) && ok;
        ok = check("sigma", sigma.download(), ref.sigma, tol) && ok;
        if (ver == 0 || ver == 3) ok = check("w_sn", w_sn.download(), ref.w_sn, tol) && ok;
        return ok;
      },
      Work{8.0 * n, 4.0 * n}, c.runs);
}

}  // namespace lab

int main(int argc, char** argv) { return lab::guarded_main(lab::main_, argc, argv); }
