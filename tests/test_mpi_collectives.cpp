// Run under mpirun (see CMakeLists.txt): the MPI communicator's collectives, the group-wide
// failure agreement, and data-parallel training keeping parameters bit-identical on every rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include "worker/group_failure.h"
#include "worker/mpi_communicator.h"
#include "worker/trainer.h"

using namespace sweep::worker;

TEST(MpiCommunicator, AllReduceSumsEveryDtype) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  int n = comm.size(), r = comm.rank();
  auto f = torch::full({5}, static_cast<float>(r + 1));
  comm.all_reduce_sum(f);
  EXPECT_TRUE(torch::equal(f, torch::full({5}, n * (n + 1) / 2.0f)));
  auto d = torch::tensor({0.5 * r, 1.0}, torch::kDouble);
  comm.all_reduce_sum(d);
  EXPECT_DOUBLE_EQ(d[0].item<double>(), 0.5 * n * (n - 1) / 2);
  EXPECT_DOUBLE_EQ(d[1].item<double>(), n);
  auto l = torch::tensor({static_cast<int64_t>(1) << 40}, torch::kLong);
  comm.all_reduce_sum(l);
  EXPECT_EQ(l[0].item<int64_t>(), n * (static_cast<int64_t>(1) << 40));
  // A non-contiguous view is reduced in place too.
  auto m = torch::ones({4, 4}).t();
  comm.all_reduce_sum(m);
  EXPECT_TRUE(torch::equal(m, torch::full({4, 4}, static_cast<float>(n))));
}

TEST(MpiCommunicator, BroadcastFromAnyRoot) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  int root = comm.size() - 1;
  auto t = torch::full({3}, static_cast<float>(comm.rank()));
  comm.broadcast(t, root);
  EXPECT_TRUE(torch::equal(t, torch::full({3}, static_cast<float>(root))));
}

TEST(GroupFailure, EveryRankThrowsTheFailingRanksMessage) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  EXPECT_NO_THROW(raise_if_any_failed(comm, std::nullopt));
  std::optional<std::string> error;
  if (comm.rank() == 1) error = "bad row 7 in shard-3.npy";
  try {
    raise_if_any_failed(comm, error);
    FAIL() << "rank " << comm.rank() << " did not throw";
  } catch (const GroupFailure& e) {
    EXPECT_NE(std::string(e.what()).find("bad row 7 in shard-3.npy"), std::string::npos) << e.what();
    if (comm.rank() != 1) {
      EXPECT_NE(std::string(e.what()).find("rank 1 of this job failed"), std::string::npos);
    }
  }
  comm.barrier();
}

namespace {

// A small job with the penalty on: 12 rows of width 8 per rank.
JobConfig small_job(int ranks) {
  JobConfig cfg;
  cfg.sae.d_in = 8;
  cfg.sae.d_sae = 16;
  cfg.absorption.enabled = true;
  cfg.absorption.dot_threshold = 0.2;
  cfg.train.batch_size = 12 * ranks;
  cfg.train.warmup_steps = 2;
  cfg.train.lr = 1e-2;
  return cfg;
}

}  // namespace

TEST(DataParallel, ParametersStayBitIdenticalAcrossRanks) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  JobConfig cfg = small_job(comm.size());
  Trainer trainer(cfg, comm, torch::kCPU);
  // Every rank gets different rows (seeded by rank).
  torch::manual_seed(100 + comm.rank());
  trainer.initialize_decoder_bias(torch::randn({12, 8}));
  for (int step = 0; step < 5; ++step) trainer.step(torch::relu(torch::randn({12, 8})));
  for (auto& p : trainer.state().model->parameters()) {
    auto mine = p.detach().clone();
    auto leaders = mine.clone();
    comm.broadcast(leaders, 0);
    EXPECT_TRUE(torch::equal(mine, leaders)) << "rank " << comm.rank();
  }
  auto P = trainer.state().absorption.P.clone(), P0 = P.clone();
  comm.broadcast(P0, 0);
  EXPECT_TRUE(torch::equal(P, P0));
  EXPECT_GT(P.sum().item<double>(), 0.0);
}

// One rank's shard is unusable (the wrong width: its forward pass throws before any collective),
// in its first step or in the middle of training: every rank throws that rank's error, none hangs.
TEST(DataParallel, ARankFailingInTheMiddleOfAStepFailsItOnEveryRank) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  for (int failing_step : {0, 3}) {
    JobConfig cfg = small_job(comm.size());
    Trainer trainer(cfg, comm, torch::kCPU);
    torch::manual_seed(100 + comm.rank());
    trainer.initialize_decoder_bias(torch::randn({12, 8}));
    int failed_at = -1;
    std::string message;
    for (int step = 0; step < 5 && failed_at < 0; ++step) {
      auto shard = torch::relu(torch::randn({12, 8}));
      if (step == failing_step && comm.rank() == 1) shard = torch::randn({12, 5});
      try {
        trainer.step(shard);
      } catch (const GroupFailure& e) {
        failed_at = step;
        message = e.what();
      }
    }
    EXPECT_EQ(failed_at, failing_step) << "rank " << comm.rank();
    if (comm.rank() != 1) EXPECT_NE(message.find("rank 1 of this job failed: "), std::string::npos) << message;
    EXPECT_NE(message.find("5"), std::string::npos) << "the shape error itself: " << message;
    comm.barrier();
  }
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  // Only rank 0 prints; every rank's failures still count through the exit code.
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0;
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_failed;
}
