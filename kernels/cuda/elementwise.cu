// CUDA elementwise family: arithmetic, activations, bias (and the spectral-norm consumers'
// x / sigma + b) and the attention residual
// (kernels/elementwise.inc; reference: kernels/cpu/elementwise.cpp).
//
// Algorithm: each map is a functor run by launch_map / launch_channel_map (map.cuh): four
// elements per thread, float4 loads and stores when the pointers allow. All are memory-bound:
// the floor is (inputs + 1) * 4 bytes per element (an add moves 12 bytes per element), a few
// FLOPs each. bias_grad and the gamma of gamma_residual are deterministic tree sums
// (reduce.cuh): one read of dy.
#include "kernels/cuda/map.cuh"
#include "kernels/cuda/reduce.cuh"

namespace ember::cuda {

namespace {

struct AddF {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct SubF {
  __device__ float operator()(float a, float b) const { return a - b; }
};
struct MulF {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct AxpbyF {  // y = alpha * x + beta * y
  float alpha, beta;
  __device__ float operator()(float x, float y) const { return alpha * x + beta * y; }
};
struct ScaleShiftF {  // alpha * x + beta (also axpby with beta == 0, which must not read y)
  float alpha, beta;
  __device__ float operator()(float x) const { return alpha * x + beta; }
};
struct BiasF {
  const float* b;
  __device__ float operator()(int64_t c, float x) const { return x + b[c]; }
};
// The spectral-norm consumers' epilogue: sigma read on the device, a true division as W / sigma
// did (kernels/cpu/elementwise.cpp is the reference).
struct SigmaBiasF {
  const float *sigma, *b;
  __device__ float operator()(int64_t c, float x) const { return x / sigma[0] + b[c]; }
};
struct SigmaScaleF {
  const float* sigma;
  __device__ float operator()(float x) const { return x / sigma[0]; }
};
struct ReluF {
  __device__ float operator()(float x) const { return x <= 0.f ? 0.f : x; }  // keeps a NaN
};
struct ReluBackF {
  __device__ float operator()(float x, float dy) const { return x <= 0.f ? 0.f : dy; }  // passes at a NaN
};
struct LeakyF {
  float slope;
  __device__ float operator()(float x) const { return x > 0.f ? x : slope * x; }
};
struct LeakyBackF {
  float slope;
  __device__ float operator()(float x, float dy) const { return x > 0.f ? dy : slope * dy; }
};
struct TanhF {
  __device__ float operator()(float x) const { return tanhf(x); }
};
struct TanhBackF {
  __device__ float operator()(float y, float dy) const { return dy * (1.f - y * y); }
};
struct SigmoidF {  // two branches so expf never overflows
  __device__ float operator()(float x) const { return x >= 0.f ? 1.f / (1.f + expf(-x)) : expf(x) / (1.f + expf(x)); }
};
struct SigmoidBackF {
  __device__ float operator()(float y, float dy) const { return dy * y * (1.f - y); }
};
// y = gamma * o + x, gamma read on the device (no host sync).
struct GammaResidualF {
  const float* gamma;
  __device__ float operator()(float o, float x) const { return gamma[0] * o + x; }
};
struct GammaScaleF {
  const float* gamma;
  __device__ float operator()(float dy) const { return gamma[0] * dy; }
};

// Loads for the reductions.
struct LoadAt {
  const float* p;
  __device__ float operator()(int64_t i, int64_t /*c*/) const { return p[i]; }
};
struct WriteSum {
  float* out;
  __device__ void operator()(int64_t c, const SumAcc& a) const { out[c] = a.s; }
};
struct ProductAt {
  const float *a, *b;
  __device__ float operator()(int64_t i) const { return a[i] * b[i]; }
};

}  // namespace

void add(const Tensor& a, const Tensor& b, Tensor& y) { launch_map(AddF{}, y.numel(), y.data(), a.data(), b.data()); }
void sub(const Tensor& a, const Tensor& b, Tensor& y) { launch_map(SubF{}, y.numel(), y.data(), a.data(), b.data()); }
void mul(const Tensor& a, const Tensor& b, Tensor& y) { launch_map(MulF{}, y.numel(), y.data(), a.data(), b.data()); }

void axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  if (beta == 0.f)  // do not read y: it may hold garbage (0 * NaN = NaN)
    launch_map(ScaleShiftF{alpha, 0.f}, y.numel(), y.data(), x.data());
  else
    launch_map(AxpbyF{alpha, beta}, y.numel(), y.data(), x.data(), static_cast<const float*>(y.data()));
}

void scale_shift(const Tensor& x, float alpha, float beta, Tensor& y) {
  launch_map(ScaleShiftF{alpha, beta}, y.numel(), y.data(), x.data());
}

void bias_add(const Tensor& x, const Tensor& b, Tensor& y) {
  launch_channel_map(BiasF{b.data()}, channel_layout(x), y.data(), x.data());
}

void sigma_bias_add(const Tensor& x, const Tensor& sigma, const Tensor& b, Tensor& y) {
  if (b.defined())
    launch_channel_map(SigmaBiasF{sigma.data(), b.data()}, channel_layout(x), y.data(), x.data());
  else
    launch_map(SigmaScaleF{sigma.data()}, y.numel(), y.data(), x.data());
}

void bias_grad(const Tensor& dy, Tensor& db) {
  reduce_channels<SumAcc>(channel_layout(dy), LoadAt{dy.data()}, WriteSum{db.data()});
}

void relu_forward(const Tensor& x, Tensor& y) { launch_map(ReluF{}, y.numel(), y.data(), x.data()); }
void relu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  launch_map(ReluBackF{}, dx.numel(), dx.data(), x.data(), dy.data());
}
void leaky_relu_forward(const Tensor& x, float slope, Tensor& y) {
  launch_map(LeakyF{slope}, y.numel(), y.data(), x.data());
}
void leaky_relu_backward(const Tensor& x, float slope, const Tensor& dy, Tensor& dx) {
  launch_map(LeakyBackF{slope}, dx.numel(), dx.data(), x.data(), dy.data());
}
void tanh_forward(const Tensor& x, Tensor& y) { launch_map(TanhF{}, y.numel(), y.data(), x.data()); }
void tanh_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  launch_map(TanhBackF{}, dx.numel(), dx.data(), y.data(), dy.data());
}
void sigmoid_forward(const Tensor& x, Tensor& y) { launch_map(SigmoidF{}, y.numel(), y.data(), x.data()); }
void sigmoid_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  launch_map(SigmoidBackF{}, dx.numel(), dx.data(), y.data(), dy.data());
}

void gamma_residual_forward(const Tensor& gamma, const Tensor& o, const Tensor& x, Tensor& y) {
  launch_map(GammaResidualF{gamma.data()}, y.numel(), y.data(), o.data(), x.data());
}

void gamma_residual_backward(const Tensor& gamma, const Tensor& o, const Tensor& dy, Tensor& dgamma, Tensor& d_o) {
  // Stream order: the sum reads dy before d_o is written, so d_o may even alias dy.
  reduce_all(o.numel(), ProductAt{o.data(), dy.data()}, dgamma.data(), 1.f);
  launch_map(GammaScaleF{gamma.data()}, d_o.numel(), d_o.data(), dy.data());
}

}  // namespace ember::cuda
