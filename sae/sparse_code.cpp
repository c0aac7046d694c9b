// The sparse code's width, its encoder values (a custom autograd function) and its decoder
// (embedding_bag).
#include "sae/sparse_code.h"

#include <cmath>

namespace sweep::sae {
namespace {

// Pre-activations of the chosen latents idx [B, w]; forward returns the given values, backward
// sends their gradient g to W_enc (sparse [d_sae, B] of g times x - b_dec), b_enc (g summed per
// latent) and b_dec (-W_enc times that sum).
struct ChosenPreactivations : torch::autograd::Function<ChosenPreactivations> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& chosen, const torch::Tensor& idx,
                               const torch::Tensor& x, const torch::Tensor& W_enc, const torch::Tensor& b_enc,
                               const torch::Tensor& b_dec) {
    ctx->save_for_backward({idx, x, W_enc, b_dec});
    return chosen.clone();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    auto saved = ctx->get_saved_variables();
    const auto &idx = saved[0], &x = saved[1], &W_enc = saved[2], &b_dec = saved[3];
    const int64_t rows = idx.size(0), width = idx.size(1), d_sae = W_enc.size(1);
    auto g = grad_output[0].reshape({-1});
    auto latent = idx.reshape({-1});
    auto row = torch::arange(rows, idx.options()).repeat_interleave(width);
    auto by_latent = torch::sparse_coo_tensor(torch::stack({latent, row}), g, {d_sae, rows});
    auto grad_W_enc = torch::mm(by_latent, x - b_dec).t();  // [d_in, d_sae]
    auto per_latent = torch::zeros({d_sae}, g.options()).index_add_(0, latent, g);
    auto grad_b_dec = -W_enc.mv(per_latent);
    return {torch::Tensor(), torch::Tensor(), torch::Tensor(), grad_W_enc, per_latent, grad_b_dec};
  }
};

}  // namespace

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
  auto values = ChosenPreactivations::apply(pre.detach().gather(1, code.idx), code.idx, x, W_enc, b_enc, b_dec);
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
