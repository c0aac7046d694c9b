// topk: each row keeps its sae.k largest ReLU'd pre-activations, with the auxiliary dead-latent loss
// of the TopK family (shared with BatchTopK and Matryoshka). Its sparse step's code holds k entries a
// row from a single top-k, so its size is known before the step.
#include "sae/architectures/topk.h"

#include "sae/losses.h"
#include "sae/sae_model.h"
#include "sae/saelens_export.h"

namespace sweep::sae {

std::vector<Setting> topk_family_settings() {
  using namespace setting_checks;
  return {
      field("sae.k", &SaeConfig::k, at_least(1), "topk: active latents per token; batchtopk and matryoshka: their mean over a batch (k x B kept)"),
      field("sae.k_aux", &SaeConfig::k_aux, at_least(0), "topk: latents in the auxiliary loss (0: d_in / 2)"),
      field("sae.aux_weight", &SaeConfig::aux_weight, at_least(0), "topk: weight of the auxiliary loss"),
      field("sae.dead_after_tokens", &SaeConfig::dead_after_tokens, at_least(1), "topk: tokens without firing before a latent is dead"),
  };
}

ArchShare TopkFamily::local_statistics(const Sae& /*sae*/, const Forward& fwd, const torch::Tensor& x,
                                       const BatchContext& /*batch*/) const {
  torch::NoGradGuard no_grad;
  auto e = x - fwd.x_hat;  // carried to the auxiliary loss, which fits the dead latents to it
  return {torch::cat({e.sum(0), e.pow(2).sum().reshape({1})}), e};
}

torch::Tensor TopkFamily::reconstruction(const ArchLossInputs& in) const {
  return reconstruction_loss(in.x, in.fwd.x_hat, in.loss.recon, in.batch);
}

ArchLosses TopkFamily::losses(const ArchLossInputs& in) const {
  const auto& cfg = in.sae.config();
  ArchLosses out{reconstruction(in), {}, {}};
  if (in.any_dead) {  // none dead (the last step's read said so): the auxiliary loss is 0
    auto dead = in.tokens_since_fired > static_cast<double>(cfg.dead_after_tokens);
    out.aux = cfg.aux_weight * topk_aux_loss(in.sae, in.fwd, in.x, in.carried, dead,
                                             in.section.narrow(0, 0, cfg.d_in + 1), in.batch);
  }
  return out;
}

torch::Tensor TopkFamily::dead_next(const SaeConfig& cfg, const torch::Tensor& tokens_since_fired) const {
  return (tokens_since_fired > static_cast<double>(cfg.dead_after_tokens)).any().reshape({1});
}

std::vector<SettingProblem> TopkFamily::check(const SaeConfig& cfg) const {
  if (cfg.k > cfg.d_sae) return {{"sae.k", "larger than sae.d_sae = " + std::to_string(cfg.d_sae) + "; choose k <= d_sae"}};
  return {};
}

namespace {

class Topk final : public TopkFamily {
 public:
  torch::Tensor activate(const Sae& sae, const torch::Tensor& pre) const override {
    auto top = torch::relu(pre).topk(sae.config().k, /*dim=*/1);
    return torch::zeros_like(pre).scatter(1, std::get<1>(top), std::get<0>(top));
  }

  // k x rows (0 in auto when k is over a tenth of d_sae).
  std::optional<int64_t> fixed_code_size(const SaeConfig& cfg, int64_t rows) const override {
    if (cfg.step == StepMode::Dense) return 0;
    return cfg.step == StepMode::Sparse || 10 * cfg.k <= cfg.d_sae ? cfg.k * rows : 0;
  }

  void forward_train(const Sae& sae, const torch::Tensor& x, int64_t code_size, Forward& out) const override {
    const int64_t size = step_code_size(sae, x, code_size, {});
    if (size == 0) {
      out.f = activate(sae, out.pre);
      out.fired = firing(out.f);
      return decode_densely(sae, out);
    }
    ChosenLatents chosen;
    {
      torch::NoGradGuard no_grad;  // one top-k gives f and the code's latents
      auto [values, idx] = torch::relu(out.pre).topk(sae.config().k, 1);
      out.f = torch::zeros_like(out.pre).scatter_(1, idx, values);
      chosen = fixed_width_code(idx, values > 0);
    }
    code_the_chosen(sae, x, chosen, out);
    decode_the_code(sae, out);
  }

  void export_saelens(const Sae& sae, SaeLensExport& out) const override {
    const int64_t k = sae.config().k;
    out.cfg["architecture"] = "topk";
    out.cfg["activation_fn"] = "topk";
    out.cfg["k"] = k;
    out.cfg["activation_fn_kwargs"] = {{"k", k}};
    // As SAELens's own inference save writes TopK: with decoder rows at unit norm (as they always
    // are here) rescaling by their norms changes nothing, and SAELens may then fold them.
    out.cfg["rescale_acts_by_decoder_norm"] = true;
  }
};

}  // namespace

ArchitectureEntry topk_architecture() { return {"topk", topk_family_settings(), [] { return std::make_unique<Topk>(); }}; }

}  // namespace sweep::sae
