// The encoder's pre-activations with hand-written backward passes (dense, and a sparse code's).
#include "sae/encoder.h"

#include "sae/products.h"

namespace sweep::sae {
namespace {

// The gradients of b_enc and b_dec from the pre-activations' gradient summed per latent.
std::pair<torch::Tensor, torch::Tensor> bias_gradients(const torch::Tensor& per_latent, const torch::Tensor& W_enc) {
  return {per_latent, -W_enc.mv(per_latent)};
}

struct DensePreactivations : torch::autograd::Function<DensePreactivations> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& W_enc,
                               const torch::Tensor& b_enc, const torch::Tensor& b_dec, MatmulDtype dtype) {
    auto centred = x - b_dec;
    ctx->save_for_backward({centred, W_enc});
    ctx->saved_data["dtype"] = static_cast<int64_t>(dtype);
    return product(centred, W_enc, dtype, b_enc);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    auto saved = ctx->get_saved_variables();
    const auto &centred = saved[0], &W_enc = saved[1], &g = grad_output[0];
    const auto dtype = static_cast<MatmulDtype>(ctx->saved_data["dtype"].toInt());
    auto [grad_b_enc, grad_b_dec] = bias_gradients(g.sum(0), W_enc);
    auto grad_x = ctx->needs_input_grad(0) ? product(g, W_enc.t(), dtype) : torch::Tensor();
    return {grad_x, product(centred.t(), g, dtype), grad_b_enc, grad_b_dec, torch::Tensor()};
  }
};

struct ChosenPreactivations : torch::autograd::Function<ChosenPreactivations> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& chosen, const torch::Tensor& idx,
                               const torch::Tensor& row, const torch::Tensor& order, const torch::Tensor& starts,
                               const torch::Tensor& x, const torch::Tensor& W_enc, const torch::Tensor& b_enc,
                               const torch::Tensor& b_dec) {
    ctx->save_for_backward({idx, row, order, starts, x, W_enc, b_dec});
    return chosen.clone();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    auto saved = ctx->get_saved_variables();
    const auto &idx = saved[0], &row = saved[1], &x = saved[4], &W_enc = saved[5], &b_dec = saved[6];
    const int64_t d_sae = W_enc.size(1);
    const auto& g = grad_output[0];
    auto grad_W_enc = chosen_latents_weight_gradient(idx, row, g, {saved[2], saved[3]}, x - b_dec, d_sae);
    auto per_latent = torch::zeros({d_sae}, g.options()).index_add_(0, idx, g);
    auto [grad_b_enc, grad_b_dec] = bias_gradients(per_latent, W_enc);
    return {{}, {}, {}, {}, {}, {}, grad_W_enc, grad_b_enc, grad_b_dec};
  }
};

}  // namespace

torch::Tensor encoder_preactivations(const torch::Tensor& x, const torch::Tensor& W_enc, const torch::Tensor& b_enc,
                                     const torch::Tensor& b_dec, MatmulDtype dtype) {
  return DensePreactivations::apply(x, W_enc, b_enc, b_dec, dtype);
}

torch::Tensor chosen_preactivations(const torch::Tensor& chosen, const torch::Tensor& idx, const torch::Tensor& row,
                                    const LatentOrder& by_latent, const torch::Tensor& x, const torch::Tensor& W_enc,
                                    const torch::Tensor& b_enc, const torch::Tensor& b_dec) {
  return ChosenPreactivations::apply(chosen, idx, row, by_latent.order, by_latent.starts, x, W_enc, b_enc, b_dec);
}

torch::Tensor chosen_latents_weight_gradient(const torch::Tensor& idx, const torch::Tensor& row, const torch::Tensor& g,
                                             const LatentOrder& by_latent, const torch::Tensor& centred, int64_t d_sae) {
  if (by_latent.defined()) return sum_over_latents(centred.contiguous(), row, g, by_latent, LatentSums::AsColumns);
  const int64_t rows = centred.size(0);
  auto scattered = torch::zeros({rows * d_sae}, g.options()).index_add_(0, row * d_sae + idx, g);
  return torch::mm(centred.t(), scattered.view({rows, d_sae}));
}

}  // namespace sweep::sae
