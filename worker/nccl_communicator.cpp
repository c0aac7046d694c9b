// NCCL set-up (ncclGetUniqueId on the leader, MPI_Bcast, ncclCommInitRank), in-place all-reduce
// and broadcast of contiguous CUDA tensors, and completion polling that watches for async errors.
#include "worker/nccl_communicator.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <thread>

namespace sweep::worker {
namespace {

ncclDataType_t nccl_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat: return ncclFloat32;
    case torch::kDouble: return ncclFloat64;
    case torch::kHalf: return ncclFloat16;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kInt: return ncclInt32;
    case torch::kLong: return ncclInt64;
    case torch::kByte: return ncclUint8;
    case torch::kChar: return ncclInt8;
    default: throw std::invalid_argument(std::string("NCCL: unsupported dtype ") + c10::toString(type));
  }
}

void check(ncclResult_t result, const char* what) {
  if (result != ncclSuccess) throw std::runtime_error(std::string(what) + " failed: " + ncclGetErrorString(result));
}

cudaStream_t current_stream(const torch::Tensor& tensor) {
  return c10::cuda::getCurrentCUDAStream(tensor.device().index()).stream();
}

// Runs `op` on a contiguous tensor holding `tensor`'s values, copying results back if needed.
template <typename Op>
void on_contiguous(torch::Tensor& tensor, Op op) {
  if (tensor.is_contiguous()) {
    op(tensor);
    return;
  }
  auto dense = tensor.contiguous();
  op(dense);
  tensor.copy_(dense);
}

}  // namespace

NcclCommunicator::NcclCommunicator(MPI_Comm comm, int device_index) : host_(comm) {
  ncclUniqueId id;
  if (host_.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  auto id_bytes = torch::from_blob(&id, {static_cast<int64_t>(sizeof id)}, torch::kByte);
  host_.broadcast(id_bytes, 0);
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_index));
  check(ncclCommInitRank(&comm_, host_.size(), id, host_.rank()), "ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ != nullptr) ncclCommDestroy(comm_);
}

void NcclCommunicator::abort_with(const std::string& why) {
  ncclCommAbort(comm_);
  comm_ = nullptr;
  throw std::runtime_error("NCCL: " + why);
}

void NcclCommunicator::wait_for(const torch::Tensor& tensor) {
  cudaStream_t stream = current_stream(tensor);
  const auto deadline = std::chrono::steady_clock::now() + kCollectiveTimeout;
  while (true) {
    cudaError_t state = cudaStreamQuery(stream);
    if (state == cudaSuccess) return;
    if (state != cudaErrorNotReady) throw std::runtime_error(std::string("CUDA: ") + cudaGetErrorString(state));
    ncclResult_t async = ncclSuccess;
    check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
    if (async != ncclSuccess) {
      abort_with(std::string(ncclGetErrorString(async)) + " (a rank of this job died or lost its connection)");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      abort_with("a collective did not finish in " + std::to_string(kCollectiveTimeout.count()) +
            " minutes (a rank of this job is stuck or died)");
    }
    std::this_thread::yield();
  }
}

void NcclCommunicator::run_on_gpu(torch::Tensor& tensor, const char* what, const Launch& launch) {
  if (size() == 1) return;
  if (comm_ == nullptr) throw std::runtime_error("NCCL communicator was aborted after an earlier error");
  c10::cuda::CUDAGuard guard(tensor.device());
  on_contiguous(tensor, [&](torch::Tensor& t) {
    check(launch(t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.scalar_type()), current_stream(t)), what);
    wait_for(t);
  });
}

void NcclCommunicator::all_reduce_sum(torch::Tensor& tensor) {
  if (!tensor.is_cuda()) return host_.all_reduce_sum(tensor);
  run_on_gpu(tensor, "ncclAllReduce", [&](void* data, size_t count, ncclDataType_t type, cudaStream_t stream) {
    return ncclAllReduce(data, data, count, type, ncclSum, comm_, stream);
  });
}

void NcclCommunicator::broadcast(torch::Tensor& tensor, int root) {
  if (!tensor.is_cuda()) return host_.broadcast(tensor, root);
  run_on_gpu(tensor, "ncclBroadcast", [&](void* data, size_t count, ncclDataType_t type, cudaStream_t stream) {
    return ncclBroadcast(data, data, count, type, root, comm_, stream);
  });
}

}  // namespace sweep::worker
