// Fills a shard's statistics buffer section by section, in the layout every rank derives alike.
#include "sae/batch_statistics.h"

#include <cmath>

#include "sae/candidate_pairs.h"
#include "sae/sae_model.h"

namespace sweep::sae {

torch::Tensor BatchStatistics::penalty_section(size_t slot) const {
  int64_t at = d_sae;
  for (size_t i = 0; i < slot; ++i) at += penalty_numel[i];
  return buffer.narrow(0, at, penalty_numel[slot]);
}

BatchStatistics statistics_layout(const SaeConfig& cfg, const Penalties& penalties) {
  BatchStatistics s;
  s.d_sae = cfg.d_sae;
  for (const auto& p : penalties) s.penalty_numel.push_back(p ? p->statistics_numel() : 0);
  for (auto n : s.penalty_numel) s.penalty_total += n;
  s.arch = architecture(cfg.arch).statistics_numel(cfg);
  return s;
}

torch::Tensor firing_bits(const Forward& fwd) {
  if (fwd.sparse()) return packed_code_firing(fwd.code, firing(fwd.code.vals.detach()), fwd.f.size(1));
  return packed_firing(fwd.fired.defined() ? fwd.fired : firing(fwd.f));
}

BatchStatistics local_statistics(const Sae& sae, const Forward& fwd, const torch::Tensor& x, const Penalties& penalties,
                                 const BatchContext& batch) {
  const auto& cfg = sae.config();
  auto share = sae.architecture().local_statistics(sae, fwd, x, batch);  // with gradient in `carried`
  torch::NoGradGuard no_grad;
  auto s = statistics_layout(cfg, penalties);
  s.carried = share.carried;
  bool rows_needed = false, bits_needed = false;  // by a penalty with statistics
  for (size_t i = 0; i < penalties.size(); ++i) {
    if (s.penalty_numel[i] == 0) continue;
    rows_needed = rows_needed || penalties[i]->firing_needed() == FiringNeeded::Rows;
    bits_needed = bits_needed || penalties[i]->firing_needed() == FiringNeeded::Bits;
  }
  // A sparse step's activations are its code's values: counting them there skips a [B, d_sae] pass.
  // A dense step counts down the batch with a matrix-vector product (BLAS's threads; about 4x a
  // column sum at [1024, 16384]), exact while counts stay below 2^24.
  const auto& values = fwd.sparse() ? fwd.code.vals.detach() : fwd.f;
  // Every dense training step holds fwd.fired; a sparse step needs it only for a penalty's (dense pairs' counts).
  auto fired = fwd.fired;
  if (!fired.defined() && (!fwd.sparse() || rows_needed)) fired = firing(fwd.f);
  // Candidate pairs count from the firing's bits, which also give a dense step's counts (a popcount).
  auto bits = bits_needed ? firing_bits(fwd) : torch::Tensor();
  auto counts = fwd.sparse()     ? torch::zeros({cfg.d_sae}, values.options()).index_add_(0, fwd.code.idx, firing(values))
                : bits.defined() ? popcount(bits).to(values.scalar_type())
                                 : fired.t().mv(torch::ones({fired.size(0)}, fired.options()));
  std::vector<torch::Tensor> sections{counts};
  for (size_t i = 0; i < penalties.size(); ++i) {
    if (s.penalty_numel[i] > 0) sections.push_back(penalties[i]->local_statistics({fired, bits}).to(values.scalar_type()));
  }
  if (s.arch > 0) sections.push_back(share.section.to(values.scalar_type()));
  s.buffer = torch::cat(sections);
  return s;
}

}  // namespace sweep::sae
