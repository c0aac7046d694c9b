// Candidate pairs against the dense reference in lock-step on one training trajectory: a dense and
// a candidate tracker see the same firing and the same decoders at every step, so what differs is
// only what candidates change (which pairs are tracked, and their Q history). Shared by the test
// that asserts agreement and the benchmark that prints it.
#pragma once

#include <cstdint>

#include "worker/job_config.h"

namespace sweep::test {

struct PairAgreement {
  int64_t steps = 0;
  int64_t dense_flagged = 0, candidate_flagged = 0, both_flagged = 0;  // ordered pair-steps
  // Pair-steps flagged by one tracker only although the candidate tracker had followed the pair for
  // at least 5 / (1 - beta) updates: the only difference by design is a shorter Q history.
  int64_t long_history_disagreements = 0;
  // Dense's R of the pair-steps flagged by one tracker only, as the largest |R - rho| / rho: how
  // near the ratio threshold the disagreements sit, where a pair's weight (R - rho) C is near 0.
  double largest_ratio_gap = 0;
  // L_absorb of each tracker on the same decoder, summed over the steps, and the sum of their
  // per-step differences |L_dense - L_candidates|: what the disagreements change in the loss.
  double dense_penalty = 0, candidate_penalty = 0, penalty_difference = 0;
  int64_t missed_steps = 0;  // steps after which a pair with cosine > tau was not a candidate
  int64_t refreshes = 0;     // searches the drift bound or the interval asked for
  int64_t max_candidates = 0;
  double mean_candidates = 0;
  double share_of_dense() const { return dense_flagged ? static_cast<double>(both_flagged) / dense_flagged : 1.0; }
  // Of the pair-steps flagged by either tracker, the share both flag.
  double share_of_either() const {
    const int64_t either = dense_flagged + candidate_flagged - both_flagged;
    return either ? static_cast<double>(both_flagged) / either : 1.0;
  }
  double penalty_difference_share() const { return dense_penalty > 0 ? penalty_difference / dense_penalty : 0.0; }
};

// Trains `cfg` (its own penalty as configured) on its data for `steps` steps on one process.
PairAgreement lockstep_pair_agreement(const worker::JobConfig& cfg, int64_t steps);

}  // namespace sweep::test
