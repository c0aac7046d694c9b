// The small job the collective backends' tests train data-parallel (12 rows of width 8 per rank,
// penalty on), and the check that every rank ends with the leader's parameters and EMAs.
#pragma once

#include "worker/communicator.h"
#include "worker/job_config.h"
#include "worker/trainer.h"

namespace sweep::test {

worker::JobConfig small_job(int ranks);
// Trains small_job for 5 steps on `device`, each rank on its own random rows, and expects the
// parameters and the firing EMA bit-identical to rank 0's.
void expect_training_keeps_ranks_identical(worker::Communicator& comm, torch::Device device);

}  // namespace sweep::test
