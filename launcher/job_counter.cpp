// Passive-target one-sided atomics: MPI_Fetch_and_op(+1) on an int64 that lives on rank 0; a
// plain atomic in a world of one process.
#include "launcher/job_counter.h"

#include "worker/mpi_communicator.h"

namespace sweep::launcher {

JobCounter::JobCounter(MPI_Comm world) {
  int rank = 0, size = 0;
  worker::check_mpi(MPI_Comm_rank(world, &rank), "MPI_Comm_rank");
  worker::check_mpi(MPI_Comm_size(world, &size), "MPI_Comm_size");
  if (size == 1) return;
  MPI_Aint bytes = rank == 0 ? sizeof(int64_t) : 0;
  worker::check_mpi(MPI_Win_allocate(bytes, sizeof(int64_t), MPI_INFO_NULL, world, &value_, &window_), "MPI_Win_allocate");
  if (rank == 0) {
    worker::check_mpi(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, window_), "MPI_Win_lock");
    *value_ = 0;
    worker::check_mpi(MPI_Win_unlock(0, window_), "MPI_Win_unlock");
  }
  worker::check_mpi(MPI_Barrier(world), "MPI_Barrier");
}

JobCounter::~JobCounter() {
  if (window_ != MPI_WIN_NULL) MPI_Win_free(&window_);
}

int64_t JobCounter::next() {
  if (window_ == MPI_WIN_NULL) return local_.fetch_add(1);
  const int64_t one = 1;
  int64_t taken = 0;
  worker::check_mpi(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, window_), "MPI_Win_lock");
  worker::check_mpi(MPI_Fetch_and_op(&one, &taken, MPI_INT64_T, 0, 0, MPI_SUM, window_), "MPI_Fetch_and_op");
  worker::check_mpi(MPI_Win_unlock(0, window_), "MPI_Win_unlock");
  return taken;
}

}  // namespace sweep::launcher
