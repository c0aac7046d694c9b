// A step's planned all-reduces, and the NaN stand-ins a failed rank sends for those still due.
#include "worker/step_collectives.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace sweep::worker {

StepCollectives::StepCollectives(Communicator& group, std::vector<int64_t> sizes, torch::TensorOptions options)
    : group_(group), sizes_(std::move(sizes)), options_(options) {}

void StepCollectives::all_reduce_sum(torch::Tensor& tensor) {
  if (made_ >= sizes_.size() || tensor.numel() != sizes_[made_]) {
    throw std::logic_error("training step: all-reduce " + std::to_string(made_) + " of " + std::to_string(tensor.numel()) +
                           " elements is not the one planned");
  }
  if (group_.size() > 1) group_.all_reduce_sum(tensor);
  ++made_;
}

void StepCollectives::make_rest_with_nan() {
  while (made_ < sizes_.size()) {
    auto poison = torch::full({sizes_[made_]}, std::numeric_limits<double>::quiet_NaN(), options_);
    all_reduce_sum(poison);
  }
}

}  // namespace sweep::worker
