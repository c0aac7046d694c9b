// MPI collectives on contiguous tensors: in-place all-reduce, broadcast and barrier.
#include "worker/mpi_communicator.h"

#include <stdexcept>
#include <string>

namespace sweep::worker {
namespace {

MPI_Datatype mpi_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat: return MPI_FLOAT;
    case torch::kDouble: return MPI_DOUBLE;
    case torch::kLong: return MPI_INT64_T;
    case torch::kInt: return MPI_INT32_T;
    case torch::kByte: return MPI_UINT8_T;
    default: throw std::invalid_argument(std::string("MpiCommunicator: unsupported dtype ") + c10::toString(type));
  }
}

// Runs `op` on a contiguous host tensor holding `tensor`'s values, then copies results back.
template <typename Op>
void on_host(torch::Tensor& tensor, Op op) {
  if (tensor.is_cpu() && tensor.is_contiguous()) {
    op(tensor);
    return;
  }
  auto host = tensor.to(torch::kCPU).contiguous();
  op(host);
  tensor.copy_(host);
}

}  // namespace

void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw std::runtime_error(std::string(what) + " failed: " + std::string(text, len));
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm) {
  check_mpi(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiCommunicator::all_reduce_sum(torch::Tensor& tensor) {
  if (size_ == 1) return;
  on_host(tensor, [&](torch::Tensor& t) {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.scalar_type()), MPI_SUM,
                        comm_),
          "MPI_Allreduce");
  });
}

void MpiCommunicator::broadcast(torch::Tensor& tensor, int root) {
  if (size_ == 1) return;
  on_host(tensor, [&](torch::Tensor& t) {  // a copy of bytes: every dtype will do
    check_mpi(MPI_Bcast(t.data_ptr(), static_cast<int>(t.nbytes()), MPI_BYTE, root, comm_), "MPI_Bcast");
  });
}

void MpiCommunicator::barrier() { check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }

}  // namespace sweep::worker
