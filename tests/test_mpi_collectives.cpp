// Run under mpirun (see CMakeLists.txt): the MPI communicator's collectives, the group-wide
// failure agreement, and data-parallel training keeping parameters bit-identical on every rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include "tests/data_parallel_job.h"
#include "worker/group_failure.h"
#include "worker/mpi_communicator.h"
#include "worker/trainer.h"

using namespace sweep::worker;
using sweep::test::small_job;

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

TEST(DataParallel, ParametersStayBitIdenticalAcrossRanks) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  sweep::test::expect_training_keeps_ranks_identical(comm, torch::kCPU);
}

// One rank's shard is unusable (the wrong width: its forward pass throws before any collective),
// in its first step or in the middle of training: every rank throws that rank's error, none hangs.
TEST(DataParallel, ARankFailingInTheMiddleOfAStepFailsItOnEveryRank) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  for (int failing_step : {0, 3}) {
    JobConfig cfg = small_job(comm.size());
    Trainer trainer(cfg, comm, torch::kCPU);
    torch::manual_seed(100 + comm.rank());
    trainer.start_fresh(torch::randn({12, 8}));
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
    if (comm.rank() != 1) {
      EXPECT_NE(message.find("rank 1 of this job failed: "), std::string::npos) << message;
    }
    EXPECT_NE(message.find("5"), std::string::npos) << "the shape error itself: " << message;
    comm.barrier();
  }
}

namespace {

// Passes every call on to `group`, except on `failing_rank`, where the first all-reduce of a
// tensor of `failing_numel` elements throws instead: one rank's collective failing mid-step.
class FailsOnce final : public ForwardingCommunicator {
 public:
  FailsOnce(Communicator& group, int failing_rank) : ForwardingCommunicator(group), failing_rank_(failing_rank) {}
  void all_reduce_sum(torch::Tensor& tensor) override {
    if (rank() == failing_rank_ && tensor.numel() == failing_numel) {
      failing_numel = -1;
      throw std::runtime_error("injected failure in an all-reduce of " + std::to_string(tensor.numel()));
    }
    inner_.all_reduce_sum(tensor);
  }

  int64_t failing_numel = -1;

 private:
  int failing_rank_;
};

}  // namespace

// Rank 1 fails inside its first step, at the step's first collective (the batch statistics) or at
// its second (the gradients): it makes the rest of the step's planned all-reduces with NaNs, and
// every rank throws rank 1's error.
TEST(DataParallel, ARankFailingInItsFirstRealStepFailsItOnEveryRank) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  JobConfig cfg = small_job(comm.size());
  for (bool at_gradients : {false, true}) {
    FailsOnce faulty(comm, 1);
    Trainer trainer(cfg, faulty, torch::kCPU);
    torch::manual_seed(100 + comm.rank());
    trainer.start_fresh(torch::randn({12, 8}));
    const auto sizes = trainer.step_collective_sizes();
    ASSERT_EQ(sizes.size(), 2u);
    const int64_t failing_numel = sizes[at_gradients ? 1 : 0];
    faulty.failing_numel = failing_numel;
    std::string message;
    try {
      trainer.step(torch::relu(torch::randn({12, 8})));
    } catch (const GroupFailure& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("injected failure in an all-reduce of " + std::to_string(failing_numel)),
              std::string::npos)
        << "rank " << comm.rank() << (at_gradients ? ", at the gradients: " : ", at the counts: ") << message;
    if (comm.rank() != 1) {
      EXPECT_NE(message.find("rank 1 of this job failed: "), std::string::npos) << message;
    }
    comm.barrier();
  }
}
