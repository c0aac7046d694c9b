// The training step's matrix products, in float32 or with bfloat16 inputs.
#include "sae/products.h"

namespace sweep::sae {

torch::Tensor product(const torch::Tensor& a, const torch::Tensor& b, MatmulDtype dtype, const torch::Tensor& bias) {
  if (dtype == MatmulDtype::Float32) return bias.defined() ? torch::addmm(bias, a, b) : a.mm(b);
  auto result = a.to(torch::kBFloat16).mm(b.to(torch::kBFloat16)).to(a.scalar_type());
  return bias.defined() ? result + bias : result;
}

}  // namespace sweep::sae
