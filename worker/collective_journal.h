// Lets one rank that failed in the middle of a training step leave it together with its group:
// the step's collectives are recorded, and the failed rank joins the rest of them with NaNs.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "worker/communicator.h"

namespace sweep::worker {

// A Communicator that passes every call on to its group and records the all-reduces of the current
// step. Every step makes the same sequence of collectives, so the last complete step's record
// (or the rehearsal's, before the first step) says what a step still has to make after any point.
class CollectiveJournal final : public ForwardingCommunicator {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;

  void all_reduce_sum(torch::Tensor& tensor) override;
  void broadcast(torch::Tensor& tensor, int root) override;
  void barrier() override;

  void start_step() { current_.clear(); }
  void finish_step() { last_step_.swap(current_); }  // no copy per step; start_step clears the other
  // Runs a step's local work with the collectives recorded but not made (each leaves its tensor
  // as it is), so that the step's sequence is known before the first real step.
  template <typename Work>
  void rehearse(Work local_work) {
    start_step();
    rehearsing_ = true;
    try {
      local_work();
    } catch (...) {
      rehearsing_ = false;
      throw;
    }
    rehearsing_ = false;
    finish_step();
  }
  // False until a step or a rehearsal has finished in this process.
  bool knows_step() const { return !last_step_.empty(); }
  // After a local failure: makes the all-reduces the others still expect in this step, with NaN
  // (floating point) or zero, so that they finish the step and see the failure in its results.
  void join_rest_of_step();

 private:
  struct Call {
    std::vector<int64_t> shape;
    torch::ScalarType dtype;
    torch::Device device;
  };
  bool rehearsing_ = false;
  std::vector<Call> current_, last_step_;
};

}  // namespace sweep::worker
