// Lets one rank that failed in the middle of a training step leave it together with its group:
// the step's collectives are recorded, and the failed rank joins the rest of them with NaNs.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "worker/communicator.h"

namespace sweep::worker {

// A Communicator that passes every call on to `group` and records the all-reduces of the current
// step. Every step makes the same sequence of collectives, so the last complete step's record
// says what a step still has to make after any point of it.
class CollectiveJournal final : public Communicator {
 public:
  explicit CollectiveJournal(Communicator& group) : group_(group) {}

  int rank() const override { return group_.rank(); }
  int size() const override { return group_.size(); }
  void all_reduce_sum(torch::Tensor& tensor) override;
  void broadcast(torch::Tensor& tensor, int root) override { group_.broadcast(tensor, root); }
  void barrier() override { group_.barrier(); }

  void start_step() { current_.clear(); }
  void finish_step() { last_step_.swap(current_); }  // no copy per step; start_step clears the other
  // False until one step has finished in this process (its sequence is not known before).
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
  Communicator& group_;
  std::vector<Call> current_, last_step_;
};

}  // namespace sweep::worker
