// The collective operations a job needs from its group of ranks, with no transport in sight.
// Backends: LocalCommunicator (one process) here; MPI and NCCL plug in behind the same interface.
#pragma once

#include <torch/torch.h>

namespace sweep::worker {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Element-wise sum over the group, in place; every rank ends with the same values.
  virtual void all_reduce_sum(torch::Tensor& tensor) = 0;
  virtual void broadcast(torch::Tensor& tensor, int root) = 0;
  virtual void barrier() = 0;

  bool is_leader() const { return rank() == 0; }
};

// A decorator's base: passes every call on to `inner`; a decorator overrides what it adds to.
class ForwardingCommunicator : public Communicator {
 public:
  explicit ForwardingCommunicator(Communicator& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void all_reduce_sum(torch::Tensor& tensor) override { inner_.all_reduce_sum(tensor); }
  void broadcast(torch::Tensor& tensor, int root) override { inner_.broadcast(tensor, root); }
  void barrier() override { inner_.barrier(); }

 protected:
  Communicator& inner_;
};

// A group of one: every collective is the identity.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(torch::Tensor&) override {}
  void broadcast(torch::Tensor&, int) override {}
  void barrier() override {}
};

}  // namespace sweep::worker
