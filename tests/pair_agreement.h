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
  int64_t missed_steps = 0;  // steps after which a pair with cosine > tau was not a candidate
  int64_t refreshes = 0;     // searches the drift bound or the interval asked for
  int64_t max_candidates = 0;
  double mean_candidates = 0;
  double share_of_dense() const { return dense_flagged ? static_cast<double>(both_flagged) / dense_flagged : 1.0; }
};

// Trains `cfg` (its own penalty as configured) on its data for `steps` steps on one process.
PairAgreement lockstep_pair_agreement(const worker::JobConfig& cfg, int64_t steps);

}  // namespace sweep::test
