// The process's place in the MPI world: initialises MPI (works without mpirun, as a singleton),
// and knows the world and node-local rank and size. Finalises MPI when it goes out of scope.
#pragma once

#include <mpi.h>

namespace sweep::launcher {

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int world_rank = 0, world_size = 1;
  int local_rank = 0, local_size = 1;  // ranks on this machine
};

}  // namespace sweep::launcher
