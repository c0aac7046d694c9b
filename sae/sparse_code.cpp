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

ChosenLatents active_entries(const torch::Tensor& fired, int64_t width) {
  torch::NoGradGuard no_grad;
  const int64_t rows = fired.size(0);
  auto at = torch::nonzero(fired);  // [n, 2], row by row, columns ascending within a row
  auto row = at.select(1, 0), column = at.select(1, 1);
  auto per_row = torch::bincount(row, {}, rows);
  auto slot = torch::arange(at.size(0), at.options()) - (per_row.cumsum(0) - per_row).index_select(0, row);
  ChosenLatents out;
  out.idx = torch::zeros({rows, std::max<int64_t>(width, 1)}, at.options()).index_put_({row, slot}, column);
  out.active = torch::zeros(out.idx.sizes(), at.options().dtype(torch::kBool)).index_put_({row, slot}, torch::ones({}, at.options().dtype(torch::kBool)));
  return out;
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
