// The sparse code's width, its encoder values (sae/encoder.h) and its decoder (embedding_bag).
#include "sae/sparse_code.h"

#include <cmath>

#include "sae/encoder.h"

namespace sweep::sae {

torch::Tensor firing(const torch::Tensor& f) { return f.detach().sign(); }

int64_t code_width(const torch::Tensor& fired) {
  const double widest = fired.sum(1).max().item<double>();
  return std::isfinite(widest) ? static_cast<int64_t>(widest) : fired.size(1);
}

ChosenLatents largest_entries(const torch::Tensor& f, int64_t width) {
  torch::NoGradGuard no_grad;
  auto [values, idx] = f.topk(std::max<int64_t>(width, 1), 1);
  return {idx, values > 0};
}

SparseCode sparse_code(const ChosenLatents& chosen, const torch::Tensor& pre, const torch::Tensor& x,
                       const torch::Tensor& W_enc, const torch::Tensor& b_enc, const torch::Tensor& b_dec) {
  SparseCode code;
  code.idx = chosen.idx;
  auto values = chosen_preactivations(pre.detach().gather(1, code.idx), code.idx, x, W_enc, b_enc, b_dec);
  code.vals = values * chosen.active.to(values.scalar_type());
  return code;
}

torch::Tensor sparse_decode(const torch::Tensor& W_dec, const SparseCode& code) {
  const int64_t rows = code.idx.size(0), width = code.idx.size(1);
  auto offsets = torch::arange(0, rows * width, width, code.idx.options());
  return std::get<0>(torch::embedding_bag(W_dec, code.idx.reshape({-1}), offsets, false, /*mode sum*/ 0, false,
                                          code.vals.reshape({-1})));
}

}  // namespace sweep::sae
