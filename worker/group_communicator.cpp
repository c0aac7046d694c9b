// Backend choice: the NCCL path is compiled only when CMake found a CUDA LibTorch and NCCL
// (SWEEP_WITH_NCCL); every other build uses MPI, staging CUDA tensors through host memory.
#include "worker/group_communicator.h"

#include "worker/mpi_communicator.h"
#ifdef SWEEP_WITH_NCCL
#include "worker/nccl_communicator.h"
#endif

namespace sweep::worker {

const char* group_backend(torch::Device device) {
#ifdef SWEEP_WITH_NCCL
  if (device.is_cuda()) return "nccl";
#endif
  return "mpi";
}

std::unique_ptr<Communicator> make_group_communicator(MPI_Comm group, torch::Device device) {
#ifdef SWEEP_WITH_NCCL
  if (device.is_cuda()) return std::make_unique<NcclCommunicator>(group, device.index());
#endif
  return std::make_unique<MpiCommunicator>(group);
}

}  // namespace sweep::worker
