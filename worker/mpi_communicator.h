// The Communicator over an MPI communicator (one group of ranks). CPU tensors go straight to
// MPI; a CUDA tensor is staged through host memory (the NCCL backend avoids that copy).
#pragma once

#include <mpi.h>

#include "worker/communicator.h"

namespace sweep::worker {

// Throws std::runtime_error("<what> failed: <MPI's error string>") unless code is MPI_SUCCESS.
void check_mpi(int code, const char* what);

class MpiCommunicator final : public Communicator {
 public:
  // Duplicates `comm`, so this communicator's traffic never mixes with anyone else's.
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(torch::Tensor& tensor) override;
  void broadcast(torch::Tensor& tensor, int root) override;
  void barrier() override;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace sweep::worker
