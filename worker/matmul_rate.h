// The measured rate of a square matrix multiply on a device: `sweep doctor`'s BLAS check and the
// benchmarks' "share of the machine's limit" both compare against it.
#pragma once

#include <torch/torch.h>

namespace sweep::worker {

// FLOP/s of an n x n by n x n product in `dtype` on `device` (best of a few, after a warm-up).
double matmul_flops_per_second(torch::Device device, torch::ScalarType dtype, int64_t n);

}  // namespace sweep::worker
