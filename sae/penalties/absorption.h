// The seed's absorption penalty as a training penalty (sae/penalty.h): lambda times the sum over
// flagged pairs of active latents with near-parallel decoders and a high co-firing ratio (README,
// "The penalty"), its state the firing EMAs of sae/pair_tracker.h. Settings: absorption.*.
#pragma once

#include "sae/pair_tracker.h"
#include "sae/penalty.h"

namespace sweep::sae {

PenaltyEntry absorption_penalty_entry();

// The job's pair tracker, or nullptr when the penalty is off (for tools, tests and the result).
const PairTracker* pair_tracker(const Penalties& penalties);

}  // namespace sweep::sae
