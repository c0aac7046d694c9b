// The group's decision at a step boundary, taken with one small all-reduce: stop (any rank was
// asked to), checkpoint (the leader's clock says so), or fail (the leader's file writes failed).
#pragma once

#include <optional>
#include <string>

#include "worker/communicator.h"

namespace sweep::worker {

struct StepDecision {
  bool stop = false;
  bool checkpoint = false;
};

// Collective. Throws GroupFailure on every rank when any rank passes an error.
StepDecision agree_at_step_boundary(Communicator& comm, bool stop_requested, bool checkpoint_due,
                                    const std::optional<std::string>& error);

}  // namespace sweep::worker
