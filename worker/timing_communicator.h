// A Communicator decorator that measures what passes through it: seconds spent in collectives
// and bytes all-reduced. Used by the benchmark; the training code cannot tell it is there.
#pragma once

#include <chrono>

#include "worker/communicator.h"

namespace sweep::worker {

class TimingCommunicator final : public ForwardingCommunicator {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;

  void all_reduce_sum(torch::Tensor& t) override {
    if (size() > 1) bytes_reduced += static_cast<double>(t.numel() * t.element_size());
    timed([&] { inner_.all_reduce_sum(t); });
  }
  void broadcast(torch::Tensor& t, int root) override { timed([&] { inner_.broadcast(t, root); }); }
  void barrier() override { timed([&] { inner_.barrier(); }); }

  double seconds = 0;
  double bytes_reduced = 0;

 private:
  template <typename F>
  void timed(F f) {
    auto start = std::chrono::steady_clock::now();
    f();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

}  // namespace sweep::worker
