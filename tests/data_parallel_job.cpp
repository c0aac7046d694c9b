// The small data-parallel job and its check that parameters stay bit-identical across ranks,
// shared by the MPI and NCCL collective tests.
#include "tests/data_parallel_job.h"

#include <gtest/gtest.h>

#include "sae/penalties/absorption.h"

namespace sweep::test {

worker::JobConfig small_job(int ranks) {
  worker::JobConfig cfg;
  cfg.sae.d_in = 8;
  cfg.sae.d_sae = 16;
  cfg.absorption.enabled = true;
  cfg.absorption.dot_threshold = 0.2;
  cfg.train.batch_size = 12 * ranks;
  cfg.train.warmup_steps = 2;
  cfg.train.lr = 1e-2;
  return cfg;
}

void expect_training_keeps_ranks_identical(worker::Communicator& comm, torch::Device device) {
  worker::JobConfig cfg = small_job(comm.size());
  worker::Trainer trainer(cfg, comm, device);
  torch::manual_seed(100 + comm.rank());  // every rank gets different rows
  trainer.start_fresh(torch::randn({12, 8}));
  for (int step = 0; step < 5; ++step) trainer.step(torch::relu(torch::randn({12, 8})));
  std::vector<torch::Tensor> states = trainer.state().model->parameters();
  states.push_back(sae::pair_tracker(trainer.state().penalties)->P);
  for (auto& state : states) {
    EXPECT_EQ(state.device(), device);
    auto mine = state.detach().clone();
    auto leaders = mine.clone();
    comm.broadcast(leaders, 0);
    EXPECT_TRUE(torch::equal(mine, leaders)) << "rank " << comm.rank();
  }
  EXPECT_GT(sae::pair_tracker(trainer.state().penalties)->P.sum().item<double>(), 0.0);
}

}  // namespace sweep::test
