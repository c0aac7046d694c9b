// Running totals of the absorption penalty's activity over a job's steps: how often it fired, how
// many pairs it flagged (and how many of those had a short Q history), its mean loss, and how
// often the candidate pairs were found anew. The sums stay on the device until they are read
// (checkpoints and the end of the job); they are saved in checkpoints so a resumed job keeps them.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "worker/trainer.h"

namespace sweep::worker {

class AbsorptionActivity {
 public:
  void add(const StepStats& s);
  nlohmann::json summary() const;
  nlohmann::json totals() const;
  static AbsorptionActivity from_totals(const nlohmann::json& j);

 private:
  int64_t steps_ = 0, refreshes_ = 0;
  torch::Tensor sums_;  // [active steps, flagged pairs, loss, flagged pairs with short history], float64
};

}  // namespace sweep::worker
