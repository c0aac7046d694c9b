// jumprelu (Rajamanoharan et al. 2024): f = pre * H(pre - theta) with a learned threshold theta per
// latent (sae.init_threshold at the start), trained through straight-through gradients of width
// sae.bandwidth, and an L0 term sparsity_penalty * (L0 / target_l0 - 1)^2 of the global batch's
// L0 (its shard's share carried to the loss, the sum reduced with the step's statistics). Adam
// without momentum (beta1 0), as the paper trains it. Its sparse code holds every latent within
// the kernel's reach, for the threshold's gradient.
#include "sae/architecture.h"
#include "sae/jumprelu.h"
#include "sae/losses.h"
#include "sae/sae_model.h"
#include "sae/saelens_export.h"

namespace sweep::sae {
namespace {

class JumpRelu final : public Architecture {
 public:
  void add_parameters(Sae& sae) const override {
    const auto& cfg = sae.config();
    sae.log_threshold = sae.register_parameter("log_threshold", torch::full({cfg.d_sae}, std::log(cfg.init_threshold)));
  }

  torch::Tensor activate(const Sae& sae, const torch::Tensor& pre) const override {
    return jumprelu(pre, sae.threshold(), sae.config().bandwidth);
  }

  double adam_beta1() const override { return 0.0; }

  void forward_train(const Sae& sae, const torch::Tensor& x, int64_t code_size, Forward& out) const override {
    const bool measured = sae.config().step != StepMode::Dense;
    int64_t size = measured ? 0 : step_code_size(sae, x, code_size, {});
    ChosenLatents chosen;
    if (measured) {
      // Within reach: active (pre > theta), or close enough below for the threshold's straight-through
      // gradient (pre > theta - bandwidth / 2). The code carries every such entry's pre-activation.
      auto reach = firing(within_reach(sae, out.pre));
      out.entries = code_entries(reach);
      if ((size = step_code_size(sae, x, code_size, out.entries)) > 0) {
        chosen = active_entries(reach, size);
        torch::NoGradGuard no_grad;
        out.f = out.pre * (out.pre > sae.threshold()).to(out.pre.scalar_type());
      }
    }
    if (!chosen.idx.defined()) {
      out.f = activate(sae, out.pre);
      out.fired = firing(out.f);
      if (size == 0) return decode_densely(sae, out);
      chosen = active_entries(out.fired, size);
    }
    code_the_chosen(sae, x, chosen, out);
    // Padding (latent 0) must not reach latent 0's threshold.
    out.code.vals = jumprelu(out.code.vals, sae.threshold_at(out.code.idx), sae.config().bandwidth) *
                    out.code.active.to(out.code.vals.scalar_type());
    decode_the_code(sae, out);
  }

  int64_t statistics_numel(const SaeConfig& /*cfg*/) const override { return 1; }
  ArchShare local_statistics(const Sae& sae, const Forward& fwd, const torch::Tensor& /*x*/,
                             const BatchContext& batch) const override {
    auto share = jumprelu_l0_share(sae, fwd, batch);
    return {share.detach().reshape({1}), share};
  }

  ArchLosses losses(const ArchLossInputs& in) const override {
    return {reconstruction_loss(in.x, in.fwd.x_hat, in.loss.recon, in.batch),
            jumprelu_l0_loss(in.sae.config(), in.carried, in.section[0], in.batch), {}};
  }

  void export_saelens(const Sae& sae, SaeLensExport& out) const override {
    out.cfg["architecture"] = "jumprelu";
    out.cfg["activation_fn"] = "relu";
    out.weights.emplace_back("threshold", sae.threshold().detach().to(torch::kCPU, torch::kFloat).contiguous());
  }

 private:
  // The pre-activations' distance above theta - bandwidth / 2, 0 below (no gradient).
  static torch::Tensor within_reach(const Sae& sae, const torch::Tensor& pre) {
    torch::NoGradGuard no_grad;
    return torch::relu(pre - (sae.threshold() - sae.config().bandwidth / 2));
  }
};

}  // namespace

ArchitectureEntry jumprelu_architecture() {
  using namespace setting_checks;
  return {"jumprelu",
          {field("sae.bandwidth", &SaeConfig::bandwidth, above(0), "jumprelu: straight-through kernel width"),
           field("sae.target_l0", &SaeConfig::target_l0, above(0), "jumprelu: target L0"),
           field("sae.sparsity_penalty", &SaeConfig::sparsity_penalty, at_least(0), "jumprelu: weight of (L0/target - 1)^2"),
           field("sae.init_threshold", &SaeConfig::init_threshold, above(0), "jumprelu: initial threshold")},
          [] { return std::make_unique<JumpRelu>(); }};
}

}  // namespace sweep::sae
