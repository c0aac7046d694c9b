// The Communicator for CUDA tensors: NCCL collectives on the current CUDA stream; the NCCL id is
// made by the group leader and broadcast over MPI. CPU tensors (flags, small figures) use MPI.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <mpi.h>
#include <nccl.h>

#include "worker/mpi_communicator.h"

namespace sweep::worker {

class NcclCommunicator final : public Communicator {
 public:
  // Longer than any wait a healthy group has in a collective (the leader writing a large
  // checkpoint while the others already wait in the next step's first all-reduce).
  static constexpr std::chrono::minutes kCollectiveTimeout{30};

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
  // An NCCL call on a contiguous copy of a CUDA tensor's data, on the current stream, waited for.
  using Launch = std::function<ncclResult_t(void* data, size_t count, ncclDataType_t type, cudaStream_t stream)>;
  void run_on_gpu(torch::Tensor& tensor, const char* what, const Launch& launch);
  // Waits for the collective; an NCCL asynchronous error (a peer that died), or no completion
  // within kCollectiveTimeout (a peer stuck or gone unnoticed), aborts the NCCL communicator and
  // throws, so the job fails instead of hanging.
  void wait_for(const torch::Tensor& tensor);
  [[noreturn]] void abort_with(const std::string& why);

  MpiCommunicator host_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace sweep::worker
