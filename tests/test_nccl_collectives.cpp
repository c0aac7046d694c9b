// The NCCL backend on CUDA tensors (built only with a CUDA LibTorch and NCCL): sums, broadcasts,
// non-contiguous tensors, CPU tensors through MPI, and data-parallel training staying identical.
// ctest runs it on one rank; on a machine with N GPUs run `mpirun -n N` by hand.
#include <gtest/gtest.h>
#include <mpi.h>

#include "tests/data_parallel_job.h"
#include "worker/nccl_communicator.h"

using namespace sweep::worker;

namespace {

int local_gpu() {
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  int rank = 0;
  MPI_Comm_rank(local, &rank);
  MPI_Comm_free(&local);
  return rank % static_cast<int>(torch::cuda::device_count());
}

}  // namespace

TEST(Nccl, SumsAndBroadcastsCudaTensorsOfEveryDtype) {
  ASSERT_TRUE(torch::cuda::is_available());
  int gpu = local_gpu();
  NcclCommunicator comm(MPI_COMM_WORLD, gpu);
  auto cuda = torch::TensorOptions().device(torch::kCUDA, gpu);
  double n = comm.size(), expected = n * (n + 1) / 2;
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kLong, torch::kInt}) {
    auto t = torch::full({1000}, comm.rank() + 1, cuda.dtype(dtype));
    comm.all_reduce_sum(t);
    EXPECT_TRUE(torch::all(t.to(torch::kDouble) == expected).item<bool>()) << dtype;
  }
  auto strided = torch::arange(12, cuda.dtype(torch::kFloat)).view({3, 4}).t();
  comm.all_reduce_sum(strided);
  EXPECT_TRUE(torch::equal(strided.cpu(), torch::arange(12, torch::kFloat).view({3, 4}).t() * n));
  auto from_last = torch::full({7}, comm.rank(), cuda.dtype(torch::kFloat));
  comm.broadcast(from_last, comm.size() - 1);
  EXPECT_TRUE(torch::all(from_last == n - 1).item<bool>());
  auto on_cpu = torch::ones({3}, torch::kInt);
  comm.all_reduce_sum(on_cpu);
  EXPECT_TRUE(torch::all(on_cpu == comm.size()).item<bool>()) << "CPU tensors go through MPI";
}

TEST(Nccl, DataParallelTrainingOnCudaKeepsParametersIdentical) {
  int gpu = local_gpu();
  NcclCommunicator comm(MPI_COMM_WORLD, gpu);
  sweep::test::expect_training_keeps_ranks_identical(comm, torch::Device(torch::kCUDA, gpu));
}
