// The all-reduces of one training step, sized before the step's work begins, so that a rank
// whose own part of the step failed can still make the ones it has not made yet, with NaNs:
// the rest of its group then finishes the step and reads the failure from the gradients' flag.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "worker/communicator.h"

namespace sweep::worker {

class StepCollectives {
 public:
  // `sizes`: the element counts of the step's all-reduces, in order (the same on every rank).
  StepCollectives(Communicator& group, std::vector<int64_t> sizes, torch::TensorOptions options);

  // The step's next all-reduce (identity in a group of one); throws if it is not the planned size.
  void all_reduce_sum(torch::Tensor& tensor);
  // After a local failure: makes the planned all-reduces not made yet, with NaN buffers.
  void make_rest_with_nan();

 private:
  Communicator& group_;
  std::vector<int64_t> sizes_;
  torch::TensorOptions options_;
  size_t made_ = 0;
};

}  // namespace sweep::worker
