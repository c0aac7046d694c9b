// The communicator a group of ranks trains with: NCCL when this build has it and the group's
// jobs run on CUDA, MPI otherwise. The training code sees only the Communicator interface.
#pragma once

#include <memory>

#include <mpi.h>
#include <torch/torch.h>

#include "worker/communicator.h"

namespace sweep::worker {

// Collective over `group`.
std::unique_ptr<Communicator> make_group_communicator(MPI_Comm group, torch::Device device);
// "nccl" or "mpi": what make_group_communicator picks for `device` in this build.
const char* group_backend(torch::Device device);

}  // namespace sweep::worker
