// The Communicator for CUDA tensors: NCCL collectives on the current CUDA stream; the NCCL id is
// made by the group leader and broadcast over MPI. CPU tensors (flags, small figures) use MPI.
#pragma once

#include <mpi.h>
#include <nccl.h>

#include "worker/mpi_communicator.h"

namespace sweep::worker {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `comm`; each rank passes the GPU it trains on.
  NcclCommunicator(MPI_Comm comm, int device_index);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  void all_reduce_sum(torch::Tensor& tensor) override;
  void broadcast(torch::Tensor& tensor, int root) override;
  void barrier() override { host_.barrier(); }

 private:
  // Waits for the collective; an NCCL asynchronous error (a peer that died) aborts the NCCL
  // communicator and throws, so the job fails instead of hanging.
  void wait_for(const torch::Tensor& tensor);

  MpiCommunicator host_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace sweep::worker
