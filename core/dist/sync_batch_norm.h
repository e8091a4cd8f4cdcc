// Synchronised batch norm (PyTorch's SyncBatchNorm) for data-parallel training: the batch
// statistics are those of the GLOBAL batch (every rank's samples), so that N processes with
// batch B compute what one process with batch N*B computes.
//
// Forward (training): per channel, the sum and count of x are all-reduced -> global mean; then
// the sum of (x - mean)^2 -> global biased variance (two passes, as the one-process kernel's
// accuracy needs); y = (x - mean) / sqrt(var + eps) * gamma + beta. The running statistics are
// updated from the global mean and unbiased variance, identically on every rank.
// Backward: with xhat = (x - mean) * invstd, the global sums S_dy = sum dy and S_dyx = sum dy*xhat
// (all-reduced) give dx = gamma * invstd * (dy - S_dy/M - xhat * S_dyx/M), M the global count.
// dgamma and dbeta are this rank's own sums: the data-parallel gradient average (sum over ranks /
// N) then makes them the global batch's gradient, exactly as for every other parameter.
// Every rank must call it for the same layers in the same order (collectives inside).
#pragma once
#include "core/dist/process_group.h"
#include "core/tensor.h"

namespace ember::dist {

// x [N, C, *]; gamma, beta [C] (may be undefined: 1 and 0); running_mean/var [C] updated in place.
// In a group of one it is ordinary training-mode batch norm (same formulas).
Tensor sync_batch_norm(ProcessGroup& pg, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                       Tensor& running_mean, Tensor& running_var, float momentum, float eps);

}  // namespace ember::dist
