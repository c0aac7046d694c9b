// The sweep's shared "next job" counter: an MPI window on world rank 0 that group leaders
// advance with an atomic fetch-and-add, or in a world of one process a std::atomic that its job
// threads share. No rank is set aside as a scheduler.
#pragma once

#include <atomic>
#include <cstdint>

#include <mpi.h>

namespace sweep::launcher {

class JobCounter {
 public:
  // Collective over `world`.
  explicit JobCounter(MPI_Comm world);
  // Collective over `world`: every rank must be done with next() first.
  ~JobCounter();
  JobCounter(const JobCounter&) = delete;
  JobCounter& operator=(const JobCounter&) = delete;

  // Atomically takes the next job index (0, 1, 2, ... across all callers; thread-safe).
  int64_t next();

 private:
  std::atomic<int64_t> local_{0};  // a world of one process: no window
  MPI_Win window_ = MPI_WIN_NULL;
  int64_t* value_ = nullptr;
};

}  // namespace sweep::launcher
