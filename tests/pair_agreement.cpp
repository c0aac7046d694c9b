// The lock-step comparison: before each step both trackers take the step's firing counts and name
// their flagged pairs on the same decoder; after it the candidates are checked against the dense
// cosines of the updated decoder and searched anew when their drift bound asks.
#include "tests/pair_agreement.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "sae/absorption.h"
#include "sae/pair_tracker.h"
#include "sharding/dataset.h"
#include "worker/communicator.h"
#include "worker/trainer.h"

namespace sweep::test {
namespace {

torch::Tensor keys(const torch::Tensor& pairs, int64_t d_sae) { return pairs.select(1, 0) * d_sae + pairs.select(1, 1); }

// Pairs i < j whose decoder cosine exceeds tau, computed densely.
torch::Tensor pairs_above(const torch::Tensor& W_dec, double tau) {
  auto unit = W_dec / W_dec.norm(2, 1, true);
  return torch::nonzero(torch::triu(unit.mm(unit.t()) > tau, 1));
}

}  // namespace

PairAgreement lockstep_pair_agreement(const worker::JobConfig& job, int64_t steps) {
  auto data = sharding::open_dataset(job.data);
  worker::JobConfig cfg = job;
  cfg.sae.d_in = data->d_in();
  const int64_t d_sae = cfg.sae.d_sae, rows = cfg.train.batch_size;
  worker::LocalCommunicator comm;
  worker::Trainer trainer(cfg, comm, torch::kCPU);
  trainer.start_fresh(data->train_shard(0, rows, 0, 1).activations);
  auto dense_cfg = cfg.absorption, candidate_cfg = cfg.absorption;
  dense_cfg.pairs = sae::PairTracking::Dense;
  candidate_cfg.pairs = sae::PairTracking::Candidates;
  sae::PairTracker dense(dense_cfg, d_sae, torch::kFloat), candidates(candidate_cfg, d_sae, torch::kFloat);
  const auto& W_dec = trainer.model().W_dec;
  candidates.refresh(W_dec);

  PairAgreement out;
  double candidate_sum = 0;
  for (int64_t step = 0; step < steps; ++step) {
    auto x = data->train_shard(step, rows, 0, 1).activations;
    {
      torch::NoGradGuard no_grad;
      auto active = (trainer.model().forward(x).f > 0).to(torch::kFloat);
      auto fired = active.sum(0);
      dense.update(fired, dense.count_co_firing(active), rows);
      candidates.update(fired, candidates.count_co_firing(active), rows);
      auto want = keys(dense.flagged_pairs(W_dec), d_sae), got = keys(candidates.flagged_pairs(W_dec), d_sae);
      out.dense_flagged += want.numel();
      out.candidate_flagged += got.numel();
      out.both_flagged += torch::isin(want, got).sum().item<int64_t>();
      const double dense_loss = dense.penalty(W_dec).loss.item<double>(), candidate_loss = candidates.penalty(W_dec).loss.item<double>();
      out.dense_penalty += dense_loss;
      out.candidate_penalty += candidate_loss;
      out.penalty_difference += std::abs(dense_loss - candidate_loss);
      // Pairs flagged by one tracker only: how long has the candidate tracked them?
      auto differ = torch::cat({want.masked_select(torch::isin(want, got).logical_not()),
                                got.masked_select(torch::isin(got, want).logical_not())});
      if (differ.numel() > 0) {
        auto first = differ.div(d_sae, "floor"), second = differ.remainder(d_sae);
        auto unordered = torch::minimum(first, second) * d_sae + torch::maximum(first, second);
        auto named = candidates.tensors();
        std::map<std::string, torch::Tensor> state(named.begin(), named.end());
        auto tracked = state.at("absorption.pairs.i") * d_sae + state.at("absorption.pairs.j");
        auto at = torch::searchsorted(tracked, unordered).clamp_max(std::max<int64_t>(0, tracked.numel() - 1));
        auto history = (step + 1) - state.at("absorption.pairs.entry").index_select(0, at);
        const double long_history = 5.0 / (1.0 - cfg.absorption.ema_decay);
        out.long_history_disagreements += (history.to(torch::kDouble) >= long_history).sum().item<int64_t>();
        auto dense_state = dense.tensors();  // {P, Q}
        sae::AbsorptionStats stats;
        stats.P = dense_state.at(0).second;
        stats.Q = dense_state.at(1).second;
        auto R = sae::ratio_matrix(stats, cfg.absorption.ratio).flatten().index_select(0, differ);
        const double rho = cfg.absorption.ratio_threshold;
        out.largest_ratio_gap = std::max(out.largest_ratio_gap, (R - rho).abs().max().item<double>() / rho);
      }
    }
    trainer.step(x);
    if (candidates.dense()) continue;  // fell back: nothing left to compare
    torch::NoGradGuard no_grad;
    if (candidates.refresh_due(W_dec).item<bool>()) {
      candidates.refresh(W_dec);
      ++out.refreshes;
    }
    auto needed = keys(pairs_above(W_dec, cfg.absorption.dot_threshold), d_sae);
    auto tracked = candidates.pair_i() * d_sae + candidates.pair_j();
    out.missed_steps += !torch::isin(needed, tracked).all().item<bool>();
    out.max_candidates = std::max(out.max_candidates, candidates.tracked_pairs());
    candidate_sum += static_cast<double>(candidates.tracked_pairs());
    ++out.steps;
  }
  out.mean_candidates = candidate_sum / static_cast<double>(std::max<int64_t>(1, out.steps));
  return out;
}

}  // namespace sweep::test
