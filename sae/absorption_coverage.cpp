// Measures the matched and highest-cosine latent pairs on held-out rows (see absorption_coverage.h).
#include "sae/absorption_coverage.h"

#include <set>

#include "sae/candidate_pairs.h"

namespace sweep::sae {

AbsorptionCoverage::AbsorptionCoverage(const torch::Tensor& W_dec,
                                       const std::vector<std::pair<int64_t, int64_t>>& matched, int64_t top_pairs)
    : d_sae_(W_dec.size(0)), n_matched_(static_cast<int64_t>(matched.size())) {
  torch::NoGradGuard no_grad;
  auto unit = unit_rows(W_dec.detach());
  std::vector<int64_t> is, js;
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const auto& [p, c] : matched) {
    is.push_back(p), js.push_back(c);
    seen.insert({std::min(p, c), std::max(p, c)});
  }
  auto top = top_cosine_pairs(unit, top_pairs);
  auto ti = top.i.cpu(), tj = top.j.cpu();
  for (int64_t k = 0; k < ti.numel(); ++k) {
    const int64_t a = ti[k].item<int64_t>(), b = tj[k].item<int64_t>();
    if (seen.count({a, b})) continue;
    is.push_back(a), js.push_back(b);
  }
  auto index = torch::TensorOptions().dtype(torch::kLong);
  i_ = torch::tensor(is, index).to(W_dec.device());
  j_ = torch::tensor(js, index).to(W_dec.device());
  cosine_ = pair_cosines(unit, i_, j_).to(torch::kDouble).cpu();
  sums_ = torch::zeros({1 + d_sae_ + i_.numel()}, torch::kDouble);
}

void AbsorptionCoverage::add(const torch::Tensor& f) {
  torch::NoGradGuard no_grad;
  auto active = (f > 0).to(torch::kFloat);
  sums_[0] += f.size(0);
  sums_.narrow(0, 1, d_sae_) += active.sum(0).to(torch::kDouble).cpu();
  if (i_.numel() > 0) sums_.narrow(0, 1 + d_sae_, i_.numel()) += pair_co_firing(packed_firing(active), i_, j_).to(torch::kDouble).cpu();
}

std::vector<CoveragePair> AbsorptionCoverage::result(const AbsorptionConfig& cfg) const {
  const double rows = std::max(1.0, sums_[0].item<double>());
  auto fired = sums_.narrow(0, 1, d_sae_) / rows;
  auto co = sums_.narrow(0, 1 + d_sae_, i_.numel()) / rows;
  auto i = i_.cpu(), j = j_.cpu();
  std::vector<CoveragePair> out;
  for (int64_t k = 0; k < i.numel(); ++k) {
    const int64_t a = i[k].item<int64_t>(), b = j[k].item<int64_t>();
    const double pa = fired[a].item<double>(), pb = fired[b].item<double>(), q = co[k].item<double>();
    double ratio = 0;
    if (pa > 0 && pb > 0) ratio = cfg.ratio == RatioKind::Lift ? q / (pa * pb) : q / std::min(pa, pb);
    const double cosine = cosine_[k].item<double>();
    const bool active = pa > cfg.activation_threshold && pb > cfg.activation_threshold;
    out.push_back({a, b, cosine, ratio, k < n_matched_, active,
                   active && cosine > cfg.dot_threshold && ratio > cfg.ratio_threshold});
  }
  return out;
}

}  // namespace sweep::sae
