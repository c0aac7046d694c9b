// MPI start-up and shut-down, and the node-local rank from MPI_COMM_TYPE_SHARED.
#include "launcher/mpi_session.h"

#include "worker/mpi_communicator.h"

namespace sweep::launcher {

MpiSession::MpiSession(int* argc, char*** argv) {
  worker::check_mpi(MPI_Init(argc, argv), "MPI_Init");
  // Errors come back as codes, checked at each call, as the worker's are.
  worker::check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  worker::check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank), "MPI_Comm_rank");
  worker::check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &world_size), "MPI_Comm_size");
  MPI_Comm local;
  worker::check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &local),
                    "MPI_Comm_split_type");
  worker::check_mpi(MPI_Comm_rank(local, &local_rank), "MPI_Comm_rank");
  worker::check_mpi(MPI_Comm_size(local, &local_size), "MPI_Comm_size");
  MPI_Comm_free(&local);
}

MpiSession::~MpiSession() { MPI_Finalize(); }

}  // namespace sweep::launcher
