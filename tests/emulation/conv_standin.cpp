// The CUDA convolutions in the emulated build. kernels/cuda/conv.cu is a cuDNN client with no
// kernel of its own, and cuDNN is not emulated: the convolutions run ember's CPU kernels on the
// host-resident buffers, so the ops around them (layers, models) run under emulation too.
#include "kernels/kernels.h"

namespace ember::cuda {
void conv2d_forward(const Tensor& x, const Tensor& w, int stride, int pad, Tensor& y) {
  cpu::conv2d_forward(x, w, stride, pad, y);
}
void conv2d_backward_data(const Tensor& dy, const Tensor& w, int stride, int pad, Tensor& dx) {
  cpu::conv2d_backward_data(dy, w, stride, pad, dx);
}
void conv2d_backward_filter(const Tensor& x, const Tensor& dy, int stride, int pad, Tensor& dw) {
  cpu::conv2d_backward_filter(x, dy, stride, pad, dw);
}
}  // namespace ember::cuda
