// Records the shapes and types of a step's all-reduces (made, or only rehearsed) and replays the
// remainder of a step with poisoned buffers for a rank whose own part of the step failed.
#include "worker/collective_journal.h"

#include <limits>

namespace sweep::worker {

void CollectiveJournal::all_reduce_sum(torch::Tensor& tensor) {
  if (!rehearsing_) inner_.all_reduce_sum(tensor);
  current_.push_back({tensor.sizes().vec(), tensor.scalar_type(), tensor.device()});
}

void CollectiveJournal::broadcast(torch::Tensor& tensor, int root) {
  if (!rehearsing_) inner_.broadcast(tensor, root);
}

void CollectiveJournal::barrier() {
  if (!rehearsing_) inner_.barrier();
}

void CollectiveJournal::join_rest_of_step() {
  for (size_t i = current_.size(); i < last_step_.size(); ++i) {
    const auto& call = last_step_[i];
    auto options = torch::TensorOptions().dtype(call.dtype).device(call.device);
    auto poison = torch::isFloatingType(call.dtype)
                      ? torch::full(call.shape, std::numeric_limits<double>::quiet_NaN(), options)
                      : torch::zeros(call.shape, options);
    all_reduce_sum(poison);
  }
}

}  // namespace sweep::worker
