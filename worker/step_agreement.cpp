// One int all-reduce of [stop, checkpoint, failed] per step; the failure message follows only
// when some rank failed, through raise_if_any_failed.
#include "worker/step_agreement.h"

#include "worker/group_failure.h"

namespace sweep::worker {

StepDecision agree_at_step_boundary(Communicator& comm, bool stop_requested, bool checkpoint_due,
                                    const std::optional<std::string>& error) {
  if (comm.size() == 1) {
    raise_if_any_failed(comm, error);
    return {stop_requested, checkpoint_due};
  }
  auto flags = torch::tensor({static_cast<int>(stop_requested), static_cast<int>(checkpoint_due),
                              static_cast<int>(error.has_value())},
                             torch::kInt);
  comm.all_reduce_sum(flags);
  if (flags[2].item<int>() > 0) raise_if_any_failed(comm, error);
  return {flags[0].item<int>() > 0, flags[1].item<int>() > 0};
}

}  // namespace sweep::worker
