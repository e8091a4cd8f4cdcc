// The two implementations of the CPU convolution kernels (kernels/conv.inc's contracts, float32
// NCHW / OIHW, square stride and padding), which kernels/cpu/conv_choice.cpp chooses between per
// shape. Each writes (assigns) its whole output.
#pragma once
#include "core/tensor.h"

namespace ember::cpu::conv_paths {

// im2col / col2im + GEMM (kernels/cpu/conv.cpp): always available.
void im2col_forward(const Tensor& x, const Tensor& w, int stride, int pad, Tensor& y);
void im2col_backward_data(const Tensor& dy, const Tensor& w, int stride, int pad, Tensor& dx);
void im2col_backward_filter(const Tensor& x, const Tensor& dy, int stride, int pad, Tensor& dw);

// oneDNN (kernels/cpu/conv_onednn.cpp). onednn_built() is false when ember was built without it;
// then the three throw. They also throw (a std::exception naming the shape) when oneDNN has no
// implementation for a shape.
bool onednn_built();
void onednn_forward(const Tensor& x, const Tensor& w, int stride, int pad, Tensor& y);
void onednn_backward_data(const Tensor& dy, const Tensor& w, int stride, int pad, Tensor& dx);
void onednn_backward_filter(const Tensor& x, const Tensor& dy, int stride, int pad, Tensor& dw);

}  // namespace ember::cpu::conv_paths
