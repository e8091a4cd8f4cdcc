// CUDA batch norm (kernels/norm.inc; reference: kernels/cpu/norm.cpp), hand-written.
//
// Why not cuDNN's cudnnBatchNormalization*: in cuDNN 9 that legacy API is deprecated in
// favour of the graph API; it needs 4-D descriptors (our [N, C] and [N, C, L] inputs would be
// reshaped to fake 4-D ones); and the op is memory-bound, so a library kernel can only save a
// pass over the data, not change the order of the cost. Ours are deterministic fixed trees
// (reduce.cuh) and share their reduction with bias_grad.
//
// Forward (training), x [N, C, inner], M = N * inner per channel:
//   1. statistics: Welford's running (count, mean, M2) per thread, merged across threads and
//      blocks with Chan et al.'s pairwise formula (reduce_channels). One read of x; stable
//      where the sum-of-squares formula would cancel (|mean| >> std).
//   2. per channel: mean, biased var = M2 / M, invstd = 1/sqrt(var + eps); the running
//      statistics move by momentum towards mean and the unbiased M2 / (M - 1); and the affine
//      pair scale = gamma * invstd, shift = beta - mean * scale.
//   3. y = x * scale[c] + shift[c] (one FMA per element).
//   Floor: two reads of x and one write of y: 12 bytes per element.
// Eval: y = (x - running_mean) * gamma / sqrt(running_var + eps) + beta: 8 bytes per element.
// Backward: with xhat = (x - mean) * invstd,
//   dbeta = sum(dy), dgamma = sum(dy * xhat)   (one pass, two sums per channel),
//   dx = gamma * invstd / M * (M * dy - dbeta - xhat * dgamma).
//   Floor: x and dy read twice, dx written: 20 bytes per element.
#include "kernels/cuda/map.cuh"
#include "kernels/cuda/reduce.cuh"

namespace ember::cuda {

namespace {

struct LoadX {
  const float* x;
  __device__ float operator()(int64_t i, int64_t /*c*/) const { return x[i]; }
};

struct TrainStats {
  const float *gamma, *beta;
  float eps, momentum;
  float *running_mean, *running_var, *save_mean, *save_invstd;
  float* affine;  // [2, C]: scale, then shift
  int64_t C;
  __device__ void operator()(int64_t c, const WelfordAcc& a) const {
    const float count = static_cast<float>(a.n);
    const float var = a.m2 / count;
    const float invstd = 1.f / sqrtf(var + eps);
    const float unbiased = a.n > 1 ? a.m2 / (count - 1.f) : var;
    save_mean[c] = a.mean;
    save_invstd[c] = invstd;
    running_mean[c] = (1.f - momentum) * running_mean[c] + momentum * a.mean;
    running_var[c] = (1.f - momentum) * running_var[c] + momentum * unbiased;
    const float scale = gamma[c] * invstd;
    affine[c] = scale;
    affine[C + c] = beta[c] - a.mean * scale;
  }
};

struct AffineF {
  const float* affine;
  int64_t C;
  __device__ float operator()(int64_t c, float x) const { return x * affine[c] + affine[C + c]; }
};

struct EvalF {
  const float *gamma, *beta, *mean, *var;
  float eps;
  __device__ float operator()(int64_t c, float x) const {
    return (x - mean[c]) * (gamma[c] / sqrtf(var[c] + eps)) + beta[c];
  }
};

// (dy, dy * xhat) for the two backward sums.
struct LoadGrad {
  const float *x, *dy, *mean, *invstd;
  __device__ float2 operator()(int64_t i, int64_t c) const {
    const float g = dy[i];
    return make_float2(g, g * (x[i] - mean[c]) * invstd[c]);
  }
};

struct WriteGradSums {
  float *dgamma, *dbeta;
  __device__ void operator()(int64_t c, const Sum2Acc& a) const {
    dbeta[c] = a.a;
    dgamma[c] = a.b;
  }
};

struct InputGradF {
  const float *gamma, *mean, *invstd, *dgamma, *dbeta;
  float m;  // elements per channel
  __device__ float operator()(int64_t c, float x, float dy) const {
    const float xhat = (x - mean[c]) * invstd[c];
    return gamma[c] * invstd[c] / m * (m * dy - dbeta[c] - xhat * dgamma[c]);
  }
};

}  // namespace

void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, float momentum,
                             Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& save_mean,
                             Tensor& save_invstd) {
  const ChannelLayout l = channel_layout(x);
  if (l.C == 0) return;
  DeviceBuffer<float> affine(static_cast<size_t>(2 * l.C));
  reduce_channels<WelfordAcc>(l, LoadX{x.data()},
                              TrainStats{gamma.data(), beta.data(), eps, momentum, running_mean.data(),
                                         running_var.data(), save_mean.data(), save_invstd.data(), affine.data(), l.C});
  launch_channel_map(AffineF{affine.data(), l.C}, l, y.data(), x.data());
}

void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                            const Tensor& running_var, float eps, Tensor& y) {
  launch_channel_map(EvalF{gamma.data(), beta.data(), running_mean.data(), running_var.data(), eps}, channel_layout(x),
                     y.data(), x.data());
}

void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& save_mean,
                        const Tensor& save_invstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const ChannelLayout l = channel_layout(x);
  if (l.C == 0) return;
  reduce_channels<Sum2Acc>(l, LoadGrad{x.data(), dy.data(), save_mean.data(), save_invstd.data()},
                           WriteGradSums{dgamma.data(), dbeta.data()});
  const float m = static_cast<float>(l.N * l.inner);
  launch_channel_map(InputGradF{gamma.data(), save_mean.data(), save_invstd.data(), dgamma.data(), dbeta.data(), m}, l,
                     dx.data(), x.data(), dy.data());
}

}  // namespace ember::cuda
