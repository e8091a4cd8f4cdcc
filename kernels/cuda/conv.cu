// CUDA 2-D convolution (kernels/conv.inc; reference: kernels/cpu/conv.cpp): cuDNN 9's legacy
// convolution API (cudnnConvolutionForward / BackwardData / BackwardFilter), NCHW, fp32.
//
// Per shape, a plan (cached for the life of the process, keyed by every dimension, stride,
// padding and the TF32 switch) holds the descriptors and, per direction, the algorithm picked
// once from cuDNN's heuristics (cudnnGetConvolution*Algorithm_v7, which rank algorithms by
// expected speed without running them: no benchmarking pass, no startup cost). We take the
// fastest candidate that
//   - succeeded and needs at most 1 GiB of workspace (from the context's growable workspace),
//   - is deterministic (bitwise reproducible runs; excludes the atomics-based filter gradient
//     algorithms), when any such candidate exists,
//   - with TF32 off, is not FFT or Winograd: those transform the data and lose a few bits even
//     in fp32, while TF32-off is the "as accurate as fp32" mode (tests hold it to 1e-5);
// relaxing the last two rules, in that order, rather than failing when no candidate meets them.
// Math type: CUDNN_TENSOR_OP_MATH when context().allow_tf32 (TF32 tensor cores, PyTorch's
// default for convolutions), else CUDNN_FMA_MATH (plain fp32 FMA).
// Floor: 2 * N * Co * Ho * Wo * Ci * KH * KW FLOPs per direction; bytes: x, w and y once each.
#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/context.h"
#include "kernels/cuda/common.cuh"

namespace ember::cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t(1) << 30;

// (N, Ci, H, W, Co, KH, KW, Ho, Wo, stride, pad, tf32)
using ConvKey = std::tuple<int, int, int, int, int, int, int, int, int, int, int, bool>;

struct Algo {
  bool chosen = false;
  int algo = 0;  // the cudnnConvolution*Algo_t value
  cudnnMathType_t math = CUDNN_FMA_MATH;
  size_t workspace = 0;
};

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Algo fwd, bwd_data, bwd_filter;
};

int as_int(int64_t v, const char* what) {
  EMBER_CHECK(v >= 0 && v <= INT_MAX, "conv2d (cuda): " << what << " = " << v << " exceeds cuDNN's int range");
  return static_cast<int>(v);
}

// The plan for these shapes, created on first use. Plans are never freed (a handful of shapes per model).
ConvPlan& plan_for(const Shape& xs, const Shape& ws, const Shape& ys, int stride, int pad, bool tf32) {
  static std::mutex mu;
  static auto* plans = new std::map<ConvKey, std::unique_ptr<ConvPlan>>;
  for (const Shape* s : {&xs, &ys, &ws})
    EMBER_CHECK(s->numel() <= INT_MAX, "conv2d (cuda): tensor " << *s << " has more elements than cuDNN indexes");
  // clang-format off
  const ConvKey key{as_int(xs[0], "N"), as_int(xs[1], "Ci"), as_int(xs[2], "H"), as_int(xs[3], "W"),
                    as_int(ws[0], "Co"), as_int(ws[2], "KH"), as_int(ws[3], "KW"),
                    as_int(ys[2], "Ho"), as_int(ys[3], "Wo"), stride, pad, tf32};
  // clang-format on
  std::lock_guard<std::mutex> lock(mu);
  auto it = plans->find(key);
  if (it != plans->end()) return *it->second;

  auto p = std::make_unique<ConvPlan>();
  const int N = std::get<0>(key), Ci = std::get<1>(key), H = std::get<2>(key), W = std::get<3>(key);
  const int Co = std::get<4>(key), KH = std::get<5>(key), KW = std::get<6>(key);
  const int Ho = std::get<7>(key), Wo = std::get<8>(key);
  EMBER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  EMBER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  EMBER_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  EMBER_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
  EMBER_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, Ci, H, W));
  EMBER_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, Co, Ho, Wo));
  EMBER_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, Co, Ci, KH, KW));
  EMBER_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, pad, pad, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                                    CUDNN_DATA_FLOAT));
  int on = 0, oc = 0, oh = 0, ow = 0;
  EMBER_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow));
  EMBER_CHECK(on == N && oc == Co && oh == Ho && ow == Wo,
              "conv2d (cuda): input " << xs << " with weight " << ws << ", stride " << stride << ", pad " << pad
                                      << " gives [" << on << ", " << oc << ", " << oh << ", " << ow
                                      << "], but the output is " << ys);
  ConvPlan& ref = *p;
  plans->emplace(key, std::move(p));
  return ref;
}

bool transforms(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool transforms(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
bool transforms(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// Picks from heuristic results (best first) by the rules in the header comment, relaxing them
// in order (determinism first, then the no-transform rule) rather than failing.
template <class Perf>
Algo pick(const Perf* perf, int count, bool tf32, const char* direction) {
  auto usable = [&](const Perf& r, int level) {
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > kMaxWorkspace) return false;
    if (level < 1 && r.determinism != CUDNN_DETERMINISTIC) return false;
    if (level < 2 && !tf32 && transforms(r.algo)) return false;
    return true;
  };
  for (int level = 0; level < 3; ++level)
    for (int i = 0; i < count; ++i)
      if (usable(perf[i], level)) {
        Algo a;
        a.chosen = true;
        a.algo = static_cast<int>(perf[i].algo);
        // Without TF32 the algorithm runs in plain FMA math whatever type the heuristic reported.
        a.math = tf32 ? perf[i].mathType : CUDNN_FMA_MATH;
        a.workspace = perf[i].memory;
        return a;
      }
  EMBER_FAIL("conv2d (cuda): cuDNN offers no usable " << direction << " algorithm (" << count
                                                      << " candidates) with TF32 " << (tf32 ? "on" : "off"));
}

// A workspace pointer for `bytes` (nullptr for none).
void* scratch(size_t bytes) { return bytes ? cuda_rt::workspace(bytes) : nullptr; }

// The algorithm of one direction, chosen on first use: max_count(h, &n) and
// query(h, requested, &returned, perf) are that direction's two cuDNN heuristic calls.
template <class Perf, class MaxCount, class Query>
const Algo& algo_for(Algo& slot, ConvPlan& p, bool tf32, const char* direction, MaxCount max_count, Query query) {
  if (!slot.chosen) {
    cudnnHandle_t h = cuda_rt::cudnn_handle();
    EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
    int requested = 0, returned = 0;
    EMBER_CUDNN_CHECK(max_count(h, &requested));
    std::vector<Perf> perf(static_cast<size_t>(requested));
    EMBER_CUDNN_CHECK(query(h, requested, &returned, perf.data()));
    slot = pick(perf.data(), returned, tf32, direction);
  }
  EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, slot.math));
  return slot;
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, int stride, int pad, Tensor& y) {
  if (y.numel() == 0) return;
  const bool tf32 = context().allow_tf32;
  ConvPlan& p = plan_for(x.shape(), w.shape(), y.shape(), stride, pad, tf32);
  const Algo& a = algo_for<cudnnConvolutionFwdAlgoPerf_t>(
      p.fwd, p, tf32, "forward", cudnnGetConvolutionForwardAlgorithmMaxCount,
      [&p](cudnnHandle_t h, int req, int* ret, cudnnConvolutionFwdAlgoPerf_t* perf) {
        return cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, req, ret, perf);
      });
  cudnnHandle_t h = cuda_rt::cudnn_handle();
  const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(a.algo);
  size_t ws = 0;
  EMBER_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, algo, &ws));
  ws = std::max(ws, a.workspace);
  const float one = 1.f, zero = 0.f;
  EMBER_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p.x, x.data(), p.w, w.data(), p.conv, algo, scratch(ws), ws, &zero,
                                            p.y, y.data()));
}

void conv2d_backward_data(const Tensor& dy, const Tensor& w, int stride, int pad, Tensor& dx) {
  if (dx.numel() == 0) return;
  const bool tf32 = context().allow_tf32;
  ConvPlan& p = plan_for(dx.shape(), w.shape(), dy.shape(), stride, pad, tf32);
  const Algo& a = algo_for<cudnnConvolutionBwdDataAlgoPerf_t>(
      p.bwd_data, p, tf32, "backward-data", cudnnGetConvolutionBackwardDataAlgorithmMaxCount,
      [&p](cudnnHandle_t h, int req, int* ret, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
        return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.x, req, ret, perf);
      });
  cudnnHandle_t h = cuda_rt::cudnn_handle();
  const auto algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(a.algo);
  size_t ws = 0;
  EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.x, algo, &ws));
  ws = std::max(ws, a.workspace);
  const float one = 1.f, zero = 0.f;
  EMBER_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p.w, w.data(), p.y, dy.data(), p.conv, algo, scratch(ws), ws,
                                                 &zero, p.x, dx.data()));
}

void conv2d_backward_filter(const Tensor& x, const Tensor& dy, int stride, int pad, Tensor& dw) {
  if (dw.numel() == 0) return;
  if (x.numel() == 0 || dy.numel() == 0) {  // an empty batch: the gradient is zero
    fill(dw, 0.f);
    return;
  }
  const bool tf32 = context().allow_tf32;
  ConvPlan& p = plan_for(x.shape(), dw.shape(), dy.shape(), stride, pad, tf32);
  const Algo& a = algo_for<cudnnConvolutionBwdFilterAlgoPerf_t>(
      p.bwd_filter, p, tf32, "backward-filter", cudnnGetConvolutionBackwardFilterAlgorithmMaxCount,
      [&p](cudnnHandle_t h, int req, int* ret, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
        return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w, req, ret, perf);
      });
  cudnnHandle_t h = cuda_rt::cudnn_handle();
  const auto algo = static_cast<cudnnConvolutionBwdFilterAlgo_t>(a.algo);
  size_t ws = 0;
  EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w, algo, &ws));
  ws = std::max(ws, a.workspace);
  const float one = 1.f, zero = 0.f;
  EMBER_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p.x, x.data(), p.y, dy.data(), p.conv, algo, scratch(ws),
                                                   ws, &zero, p.w, dw.data()));
}

}  // namespace ember::cuda
