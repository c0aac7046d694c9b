// Clamping interventions: per target root, sums over held-out rows of the subtree's contribution,
// the rest of the signal and each strategy's removed and remaining error; scored in result().
#include "sae/interventions.h"

#include <algorithm>
#include <cmath>

namespace sweep::sae {
namespace {
// Slots of one target in the sums buffer, after the shared row count; then d_in slots of sum_b r_b.
enum Slot : int64_t { kContribution, kRestSquares, kReferenceError, kRemoved, kError = kRemoved + 3, kSlots = kError + 3 };
constexpr int64_t kStrategies = 3;

// v minus its component along c, row by row (v itself where c = 0).
torch::Tensor orthogonal_to(const torch::Tensor& v, const torch::Tensor& c, const torch::Tensor& cc) {
  auto along = (v * c).sum(1) / cc.clamp_min(1e-30);
  return v - along.unsqueeze(1) * c;
}
}  // namespace

const char* clamp_strategy_name(ClampStrategy strategy) {
  switch (strategy) {
    case ClampStrategy::Base: return "base";
    case ClampStrategy::Concept: return "concept";
    case ClampStrategy::Coordinated: return "coordinated";
  }
  return "?";
}

std::vector<int64_t> latents_for_features(const GroundTruth& truth, const std::vector<int64_t>& matched,
                                          const torch::Tensor& W_dec, int64_t concept_width) {
  const int64_t d_sae = W_dec.size(0);
  if (concept_width <= 0 || concept_width >= d_sae) return matched;
  torch::NoGradGuard no_grad;
  auto dirs = truth.directions.to(torch::kCPU, torch::kDouble);
  auto dec = W_dec.detach().to(torch::kCPU, torch::kDouble);
  auto cos = (dirs / dirs.norm(2, 1, true)).mm((dec / dec.norm(2, 1, true)).t()).abs();
  auto concept = std::get<1>(cos.narrow(1, 0, concept_width).max(1));
  auto base = std::get<1>(cos.narrow(1, concept_width, d_sae - concept_width).max(1)) + concept_width;
  std::vector<int64_t> latent(truth.parents.size());
  for (size_t i = 0; i < latent.size(); ++i) {
    latent[i] = (truth.parents[i] < 0 ? concept : base)[static_cast<int64_t>(i)].item<int64_t>();
  }
  return latent;
}

ClampingInterventions::ClampingInterventions(const GroundTruth& truth, const std::vector<int64_t>& latent_of_feature,
                                             const torch::Tensor& W_dec, int64_t max_targets)
    : d_in_(truth.directions.size(1)) {
  torch::NoGradGuard no_grad;
  const auto directions = truth.directions.to(torch::kCPU, torch::kFloat);
  const auto decoder = W_dec.detach().to(torch::kCPU, torch::kFloat);
  const auto& parents = truth.parents;
  const auto n = static_cast<int64_t>(parents.size());
  for (int64_t root = 0; root < n && targets() < max_targets; ++root) {
    if (parents[root] >= 0 || latent_of_feature[root] < 0) continue;
    std::vector<int64_t> subtree{root};
    for (int64_t i = 0; i < n; ++i) {  // parents precede children: one pass finds every descendant
      if (parents[i] >= 0 && std::find(subtree.begin(), subtree.end(), parents[i]) != subtree.end()) {
        subtree.push_back(i);
      }
    }
    const int64_t concept = latent_of_feature[root];
    std::vector<int64_t> base;
    for (size_t k = 1; k < subtree.size(); ++k) {
      const int64_t l = latent_of_feature[subtree[k]];
      if (l >= 0 && l != concept && std::find(base.begin(), base.end(), l) == base.end()) base.push_back(l);
    }
    auto both = base;
    both.push_back(concept);
    Target t;
    t.subtree = torch::tensor(subtree, torch::kLong);
    t.subtree_directions = directions.index_select(0, t.subtree);
    for (const auto& latents : {base, std::vector<int64_t>{concept}, both}) {
      t.clamped.push_back(torch::tensor(latents, torch::kLong));
      t.clamped_rows.push_back(decoder.index_select(0, t.clamped.back()));
    }
    targets_.push_back(std::move(t));
  }
  sums_ = torch::zeros({1 + targets() * (kSlots + d_in_)}, torch::kDouble);
}

void ClampingInterventions::add(const torch::Tensor& x_in, const torch::Tensor& x_hat_in, const torch::Tensor& f_in,
                                const torch::Tensor& feature_acts) {
  torch::NoGradGuard no_grad;
  auto x = x_in.to(torch::kCPU, torch::kFloat);
  auto e = x - x_hat_in.to(torch::kCPU, torch::kFloat);
  auto f = f_in.to(torch::kCPU, torch::kFloat);
  auto acts = feature_acts.to(torch::kCPU, torch::kFloat);
  auto sum = [](const torch::Tensor& t) { return t.sum().to(torch::kDouble); };
  sums_[0] += static_cast<double>(x.size(0));
  for (int64_t t = 0; t < targets(); ++t) {
    const auto& target = targets_[t];
    auto c = acts.index_select(1, target.subtree).mm(target.subtree_directions);
    auto cc = (c * c).sum(1);
    auto rest = x - c;
    std::vector<torch::Tensor> slots(kSlots);
    slots[kContribution] = cc.sum().to(torch::kDouble);
    slots[kRestSquares] = sum(rest * rest);
    slots[kReferenceError] = sum(orthogonal_to(e, c, cc).pow(2));
    for (int64_t s = 0; s < kStrategies; ++s) {
      auto removed = f.index_select(1, target.clamped[s]).mm(target.clamped_rows[s]);  // x_hat - x_hat'
      slots[kRemoved + s] = sum(removed * c);
      slots[kError + s] = sum(orthogonal_to(e - c + removed, c, cc).pow(2));  // r - x_hat', off c
    }
    auto part = sums_.narrow(0, 1 + t * (kSlots + d_in_), kSlots + d_in_);
    part.narrow(0, 0, kSlots).add_(torch::stack(slots));
    part.narrow(0, kSlots, d_in_).add_(rest.sum(0).to(torch::kDouble));
  }
}

std::map<std::string, double> ClampingInterventions::result() const {
  const double rows = sums_[0].item<double>();
  std::vector<double> removal(kStrategies, 0.0), preservation(kStrategies, 0.0);
  int64_t scored = 0;
  for (int64_t t = 0; t < targets(); ++t) {
    auto part = sums_.narrow(0, 1 + t * (kSlots + d_in_), kSlots + d_in_);
    const double contribution = part[kContribution].item<double>();
    const double rest_variance =
        part[kRestSquares].item<double>() - part.narrow(0, kSlots, d_in_).pow(2).sum().item<double>() / std::max(rows, 1.0);
    if (contribution <= 0 || rest_variance <= 0) continue;  // the subtree never fired here
    ++scored;
    const double reference = 1.0 - part[kReferenceError].item<double>() / rest_variance;
    for (int64_t s = 0; s < kStrategies; ++s) {
      removal[s] += part[kRemoved + s].item<double>() / contribution;
      preservation[s] += (1.0 - part[kError + s].item<double>() / rest_variance) / reference;
    }
  }
  std::map<std::string, double> out{{"clamp_targets", static_cast<double>(scored)}};
  for (int64_t s = 0; s < kStrategies; ++s) {
    const std::string name = std::string("clamp_") + clamp_strategy_name(static_cast<ClampStrategy>(s));
    out[name + "_removal"] = scored ? removal[s] / scored : std::nan("");
    out[name + "_preservation"] = scored ? preservation[s] / scored : std::nan("");
  }
  return out;
}

}  // namespace sweep::sae
