// Makes the ranks of a group fail together: if any rank hit an error, every rank throws the
// first failing rank's message, so no rank is left waiting in a collective.
#pragma once

#include <optional>
#include <string>

#include "worker/communicator.h"

namespace sweep::worker {

struct GroupFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An error as a job's failure reason, on one line: LibTorch's message without its backtrace (which
// goes to the log), an allocation failure said plainly.
std::string error_text(const std::exception& e);

// Collective: call on every rank of the group at the same point.
void raise_if_any_failed(Communicator& comm, const std::optional<std::string>& local_error);

// Runs `work` (no collectives inside); if it throws on any rank, every rank throws.
template <typename Work>
auto agree_on(Communicator& comm, Work work) -> decltype(work()) {
  std::optional<std::string> error;
  decltype(work()) result{};
  try {
    result = work();
  } catch (const std::exception& e) {
    error = error_text(e);
  }
  raise_if_any_failed(comm, error);
  return result;
}

}  // namespace sweep::worker
