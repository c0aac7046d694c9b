// matryoshka (Bussmann et al., "Learning Multi-Level Features with Matryoshka SAEs"): BatchTopK
// whose reconstruction term sums the loss of each nested prefix of the latents
// (sae.matryoshka_widths, weighted by sae.matryoshka_weights); its first prefix is the concept level.
#include "sae/architectures/batchtopk.h"
#include "sae/losses.h"
#include "sae/sae_model.h"
#include "sae/saelens_export.h"

namespace sweep::sae {
namespace {

// The prefixes' widths: at least 1 and strictly increasing.
SettingCheck increasing_widths() {
  return [](const nlohmann::json& v) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i].get<int64_t>() < 1) return "widths must be at least 1, got " + v[i].dump();
      if (i > 0 && v[i].get<int64_t>() <= v[i - 1].get<int64_t>()) {
        return "widths must increase strictly (" + v[i - 1].dump() + " then " + v[i].dump() + ")";
      }
    }
    return std::string();
  };
}
// The prefixes' loss weights: none below 0.
SettingCheck non_negative_weights() {
  return [](const nlohmann::json& v) {
    for (const auto& w : v) {
      if (w.get<double>() < 0) return "weights must be at least 0, got " + w.dump();
    }
    return std::string();
  };
}

class Matryoshka final : public BatchTopk {
 public:
  int64_t concept_width(const SaeConfig& cfg) const override { return matryoshka_prefixes(cfg).front(); }

  void export_saelens(const Sae& sae, SaeLensExport& out) const override {
    BatchTopk::export_saelens(sae, out);
    out.cfg["metadata"]["matryoshka_widths"] = matryoshka_prefixes(sae.config());
  }

  std::vector<SettingProblem> check(const SaeConfig& cfg) const override {
    auto problems = BatchTopk::check(cfg);
    const auto& widths = cfg.matryoshka_widths;
    if (widths.empty()) {
      problems.push_back({"sae.matryoshka_widths", "sae.arch = \"matryoshka\" needs the nested prefixes' widths, for example [" +
                                                       std::to_string(cfg.d_sae / 8) + "] for a two-level SAE"});
      return problems;
    }
    if (widths.back() > cfg.d_sae) {
      problems.push_back({"sae.matryoshka_widths", "a width beyond sae.d_sae = " + std::to_string(cfg.d_sae)});
    }
    if (widths.front() < cfg.k) {
      problems.push_back({"sae.matryoshka_widths", "the first prefix is narrower than sae.k = " + std::to_string(cfg.k) +
                                                       ": it could not hold a row's k latents; widen it or lower k"});
    }
    const auto& weights = cfg.matryoshka_weights;
    const size_t prefixes = widths.size() + (widths.back() == cfg.d_sae ? 0 : 1);
    if (!weights.empty() && weights.size() != prefixes) {
      problems.push_back({"sae.matryoshka_weights", "holds " + std::to_string(weights.size()) + " weights for the " +
                                                        std::to_string(prefixes) + " prefixes (sae.matryoshka_widths, then d_sae); give "
                                                        "one weight per prefix, or [] to weigh each 1"});
    }
    double weight_sum = 0;
    for (double w : weights) weight_sum += w;
    if (!weights.empty() && weight_sum == 0) {
      problems.push_back({"sae.matryoshka_weights",
                          "every weight is 0, so nothing would be reconstructed; give some prefix a weight above 0"});
    }
    return problems;
  }

 protected:
  torch::Tensor reconstruction(const ArchLossInputs& in) const override {
    return matryoshka_reconstruction_loss(in.sae, in.fwd, in.x, in.loss.recon, in.batch);
  }
};

}  // namespace

ArchitectureEntry matryoshka_architecture() {
  auto settings = topk_family_settings();
  settings.push_back(field("sae.matryoshka_widths", &SaeConfig::matryoshka_widths, increasing_widths(),
                      "matryoshka: widths of the nested prefixes, each with its own reconstruction loss (d_sae is the "
                      "last, added when left out); one width w1 makes a two-level SAE: w1 concept latents over d_sae - "
                      "w1 base ones",
                      {true, true}));
  settings.push_back(field("sae.matryoshka_weights", &SaeConfig::matryoshka_weights, non_negative_weights(),
                      "matryoshka: each prefix's weight in the reconstruction loss, in the prefixes' order (d_sae's "
                      "last); [] weighs every prefix 1",
                      {true, true}));
  return {"matryoshka", settings, [] { return std::make_unique<Matryoshka>(); }};
}

}  // namespace sweep::sae
