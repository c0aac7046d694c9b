// JumpReLU with straight-through threshold gradients (rectangle kernel of width `bandwidth`),
// as in Rajamanoharan et al. 2024: f = z * H(z - theta), L0 = sum H(z - theta).
#pragma once

#include <torch/torch.h>

namespace sweep::sae {

// theta is [d_sae] (broadcast over the batch's rows) or z's shape (a sparse code's latents).
// z * H(z - theta); d/dz = H(z - theta), d/dtheta = -(theta / bw) * K((z - theta) / bw).
torch::Tensor jumprelu(const torch::Tensor& z, const torch::Tensor& theta, double bandwidth);
// H(z - theta); d/dz = 0, d/dtheta = -(1 / bw) * K((z - theta) / bw).
torch::Tensor heaviside_step(const torch::Tensor& z, const torch::Tensor& theta, double bandwidth);

}  // namespace sweep::sae
