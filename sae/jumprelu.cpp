// JumpReLU and its Heaviside step as autograd functions with straight-through
// estimators for the threshold (rectangle kernel K(u) = 1[|u| < 1/2]).
#include "sae/jumprelu.h"

#include <ATen/ExpandUtils.h>

namespace sweep::sae {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

torch::Tensor rectangle(const torch::Tensor& u) { return (u.abs() < 0.5).to(u.scalar_type()); }

// Shared backward: the threshold gradient -(scale / bw) * K((z - theta) / bw), summed to theta's
// shape: over the batch for a [d_sae] threshold, not at all for one gathered per entry.
torch::Tensor threshold_grad(const torch::Tensor& grad, const torch::Tensor& z,
                             const torch::Tensor& theta, const torch::Tensor& scale, double bw) {
  return at::sum_to(grad * (-scale / bw) * rectangle((z - theta) / bw), theta.sizes());
}

struct JumpReluFn : torch::autograd::Function<JumpReluFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& z,
                               const torch::Tensor& theta, double bandwidth) {
    ctx->save_for_backward({z, theta});
    ctx->saved_data["bw"] = bandwidth;
    return z * (z > theta).to(z.scalar_type());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& z = saved[0];
    const auto& theta = saved[1];
    double bw = ctx->saved_data["bw"].toDouble();
    auto grad_z = grads[0] * (z > theta).to(z.scalar_type());
    auto grad_theta = threshold_grad(grads[0], z, theta, theta, bw);
    return {grad_z, grad_theta, torch::Tensor()};
  }
};

struct StepFn : torch::autograd::Function<StepFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& z,
                               const torch::Tensor& theta, double bandwidth) {
    ctx->save_for_backward({z, theta});
    ctx->saved_data["bw"] = bandwidth;
    return (z > theta).to(z.scalar_type());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& z = saved[0];
    const auto& theta = saved[1];
    double bw = ctx->saved_data["bw"].toDouble();
    auto grad_theta = threshold_grad(grads[0], z, theta, torch::ones_like(theta), bw);
    return {torch::zeros_like(z), grad_theta, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor jumprelu(const torch::Tensor& z, const torch::Tensor& theta, double bandwidth) {
  return JumpReluFn::apply(z, theta, bandwidth);
}

torch::Tensor heaviside_step(const torch::Tensor& z, const torch::Tensor& theta, double bandwidth) {
  return StepFn::apply(z, theta, bandwidth);
}

}  // namespace sweep::sae
