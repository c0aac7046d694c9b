// Adam's update of a float32 CPU parameter in one pass over the parameter, its gradient and its two
// moments (LibTorch's Adam makes eight passes over them), and the decoder's under its unit-norm
// constraint: each row's gradient made orthogonal to the row, the update, the row set back to unit
// norm, one row at a time while it is in cache. The maths is LibTorch's Adam without weight decay
// or amsgrad; the GPU keeps LibTorch's. Each element's result is the same whatever the threads.
// (Only ATen's tensor is included: the file is compiled without the precompiled LibTorch headers, as
// its sqrt vectorizes only without errno.)
#pragma once

#include <ATen/core/Tensor.h>

namespace sweep::sae {

struct AdamStep {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0;
  int64_t count = 0;  // this update's number, from 1 (for the moments' bias correction)
};

// m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
// param <- param - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
void adam_update(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                 const at::Tensor& exp_avg_sq, const AdamStep& step);

// For W_dec [d_sae, d_in], row by row: grad <- grad - (grad . u) u with u the row's unit
// direction (written back into `grad`), adam_update on the row, then the row divided by its norm.
void unit_rows_adam_update(const at::Tensor& W, const at::Tensor& grad, const at::Tensor& exp_avg,
                           const at::Tensor& exp_avg_sq, const AdamStep& step);

}  // namespace sweep::sae
