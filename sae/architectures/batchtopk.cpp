// BatchTopK's batch-wide selection, its inference threshold (a buffer, updated from the group's
// smallest kept activations after the step's first all-reduce) and its export as SAELens saves it
// for inference: "jumprelu" with that threshold for every latent.
#include "sae/architectures/batchtopk.h"

#include <cmath>

#include "sae/sae_model.h"
#include "sae/saelens_export.h"

namespace sweep::sae {

void BatchTopk::add_parameters(Sae& sae) const {
  sae.batch_threshold = sae.register_buffer("batch_threshold", torch::zeros({1}));
}

torch::Tensor BatchTopk::activate(const Sae& sae, const torch::Tensor& pre) const {
  auto f = torch::relu(pre);
  return f * (f > sae.batch_threshold).to(f.scalar_type());
}

// The k x B largest activations of the batch (ReLU'd), the rest 0.
torch::Tensor BatchTopk::train_activation(const Sae& sae, const torch::Tensor& pre) const {
  auto flat = torch::relu(pre).flatten();
  auto top = flat.topk(std::min<int64_t>(sae.config().k * pre.size(0), flat.numel()));
  return torch::zeros_like(flat).scatter(0, std::get<1>(top), std::get<0>(top)).view_as(pre);
}

ArchShare BatchTopk::local_statistics(const Sae& sae, const Forward& fwd, const torch::Tensor& x,
                                      const BatchContext& batch) const {
  auto share = TopkFamily::local_statistics(sae, fwd, x, batch);
  torch::NoGradGuard no_grad;
  // The smallest activation the batch top-k kept (0 if it kept none), on the device.
  const auto& values = fwd.sparse() ? fwd.code.vals.detach() : fwd.f;
  auto kept = values.to(torch::kBool);  // activations are >= 0: nonzero is > 0
  auto smallest = torch::where(kept, values, torch::full({}, INFINITY, values.options())).amin();
  share.section = torch::cat({share.section, torch::where(kept.any(), smallest, torch::zeros_like(smallest)).reshape({1})});
  return share;
}

void BatchTopk::after_reduction(Sae& sae, const torch::Tensor& section, int64_t shards) const {
  // The inference threshold: an EMA of the shards' mean smallest kept activation, the same on
  // every rank; it starts at the first step's value. Stays on the device.
  torch::NoGradGuard no_grad;
  auto kept_min = (section[section.size(0) - 1] / static_cast<double>(shards)).reshape({1});
  auto& t = sae.batch_threshold;
  auto rate = torch::where(t > 0, torch::full_like(t, sae.config().threshold_rate), torch::ones_like(t));
  t.add_(rate * (kept_min - t));
}

void BatchTopk::export_saelens(const Sae& sae, SaeLensExport& out) const {
  out.cfg["architecture"] = "jumprelu";
  out.cfg["activation_fn"] = "relu";
  out.weights.emplace_back("threshold", sae.batch_threshold.detach().expand({sae.config().d_sae}).to(torch::kCPU, torch::kFloat).contiguous());
}

ArchitectureEntry batchtopk_architecture() {
  return {"batchtopk", topk_family_settings(), [] { return std::make_unique<BatchTopk>(); }};
}

}  // namespace sweep::sae
