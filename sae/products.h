// The training step's matrix products in the precision train.matmul_dtype names: float32, or
// bfloat16 inputs with the result widened back to float32 (the weights, the optimiser and every
// other op stay float32, as in autocast).
#pragma once

#include <torch/torch.h>

#include "sae/sae_config.h"

namespace sweep::sae {

// bias + a b ([n, k] x [k, m]; no bias when undefined), in a's dtype.
torch::Tensor product(const torch::Tensor& a, const torch::Tensor& b, MatmulDtype dtype,
                      const torch::Tensor& bias = torch::Tensor());

}  // namespace sweep::sae
