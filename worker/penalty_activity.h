// Running totals of the absorption penalty's activity over a job's steps: how often it fired,
// how many pairs it flagged, its mean loss. Saved in checkpoints so a resumed job keeps them.
#pragma once

#include <algorithm>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "worker/trainer.h"

namespace sweep::worker {

struct PenaltyActivity {
  int64_t steps = 0, active_steps = 0;
  double pairs = 0, loss = 0;

  void add(const StepStats& s) {
    ++steps;
    active_steps += s.flagged_pairs > 0;
    pairs += static_cast<double>(s.flagged_pairs);
    loss += s.absorb_loss;
  }
  nlohmann::json summary() const {
    double n = static_cast<double>(std::max<int64_t>(1, steps));
    return {{"absorb_pairs_mean", pairs / n},
            {"absorb_active_fraction", static_cast<double>(active_steps) / n},
            {"absorb_loss_mean", loss / n}};
  }
  nlohmann::json totals() const { return {{"steps", steps}, {"active_steps", active_steps}, {"pairs", pairs}, {"loss", loss}}; }
  static PenaltyActivity from_totals(const nlohmann::json& j) {
    return {j.at("steps").get<int64_t>(), j.at("active_steps").get<int64_t>(), j.at("pairs").get<double>(),
            j.at("loss").get<double>()};
  }
};

}  // namespace sweep::worker
