// Agreement on failure: a max-reduction of (failing rank + 1) through a sum of one-hot flags,
// then the failing rank broadcasts its message.
#include "worker/group_failure.h"

#include <cstring>

#include <new>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

namespace sweep::worker {

std::string error_text(const std::exception& e) {
  std::string text;
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&e)) {
    spdlog::info("LibTorch error, with its backtrace: {}", torch_error->what());
    text = torch_error->what_without_backtrace();
  } else if (dynamic_cast<const std::bad_alloc*>(&e)) {
    text = "out of memory (std::bad_alloc): lower sae.d_sae, train.batch_size or the data's sizes";
  } else {
    text = e.what();
  }
  while (!text.empty() && text.back() == '\n') text.pop_back();
  for (auto& c : text) {
    if (c == '\n') c = ' ';
  }
  return text;
}

void raise_if_any_failed(Communicator& comm, const std::optional<std::string>& local_error) {
  if (comm.size() == 1) {
    if (local_error) throw GroupFailure(*local_error);
    return;
  }
  auto failed = torch::zeros({comm.size()}, torch::kInt);
  if (local_error) failed[comm.rank()] = 1;
  comm.all_reduce_sum(failed);
  auto failing = failed.nonzero();
  if (failing.numel() == 0) return;
  int root = static_cast<int>(failing[0][0].item<int64_t>());
  auto length = torch::zeros({1}, torch::kLong);
  if (comm.rank() == root) length[0] = static_cast<int64_t>(local_error->size());
  comm.broadcast(length, root);
  auto text = torch::zeros({length[0].item<int64_t>()}, torch::kByte);
  if (comm.rank() == root) std::memcpy(text.data_ptr(), local_error->data(), local_error->size());
  comm.broadcast(text, root);
  std::string message(static_cast<const char*>(text.data_ptr()), static_cast<size_t>(text.numel()));
  if (comm.rank() != root) message = "rank " + std::to_string(root) + " of this job failed: " + message;
  throw GroupFailure(message);
}

}  // namespace sweep::worker
