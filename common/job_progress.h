// Where a running job stands, as its group leader reports it after each step: the worker fills it,
// the launcher writes it into the job's state.json as a heartbeat, `sweep status` shows it.
#pragma once

#include <cstdint>

namespace sweep {

// Where a job stands after a step, as its group leader sees it (loss, L0 and flagged pairs are
// those of the latest logging step).
struct JobProgress {
  int64_t step = 0, steps = 0;
  double tokens_per_second = 0, eta_seconds = 0;
  double loss = 0, l0 = 0;
  int64_t flagged_pairs = 0;
};

}  // namespace sweep
