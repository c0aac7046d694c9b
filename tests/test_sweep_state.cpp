// The pieces of resuming, one at a time: checkpoints (round trip, fallback, pruning), job claims
// between processes, state.json, plan extension on a changed sweep file, the free-space check.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "common/job_state.h"
#include "config/config_error.h"
#include "config/config_schema.h"
#include "config/grid.h"
#include "config/sweep_plan.h"
#include "launcher/job_claim.h"
#include "launcher/output_check.h"
#include "sae/penalties/absorption.h"
#include "worker/checkpoint.h"
#include "worker/group_failure.h"
#include "worker/job_files.h"
#include "worker/trainer.h"

namespace fs = std::filesystem;
using namespace sweep;
using nlohmann::json;

namespace {

fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("sweep_state_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

worker::JobConfig small_job() {
  worker::JobConfig cfg;
  cfg.sae.d_in = 8;
  cfg.sae.d_sae = 16;
  cfg.absorption.enabled = true;
  cfg.absorption.dot_threshold = 0.2;
  cfg.train.batch_size = 32;
  cfg.train.warmup_steps = 2;
  cfg.train.lr = 1e-2;
  return cfg;
}

torch::Tensor batch(int64_t step) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + step);
  return torch::relu(torch::randn({32, 8}, gen));
}

// A trainer after `steps` steps of the same data.
struct TrainerRun {
  worker::LocalCommunicator comm;
  worker::Trainer trainer;
  explicit TrainerRun(const worker::JobConfig& cfg) : trainer(cfg, comm, torch::kCPU) {}
  void train(int64_t until) {
    while (trainer.state().step < until) trainer.step(batch(trainer.state().step));
  }
};

void expect_same_state(worker::TrainingState& a, worker::TrainingState& b) {
  auto ta = worker::training_state_tensors(a), tb = worker::training_state_tensors(b);
  for (auto* state : {&a, &b}) {
    auto& into = state == &a ? ta : tb;
    for (const auto& penalty : state->penalties) {
      if (!penalty) continue;
      for (auto& named : penalty->tensors()) into.push_back(named);
    }
  }
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i) {
    EXPECT_EQ(ta[i].first, tb[i].first);
    EXPECT_TRUE(torch::equal(ta[i].second, tb[i].second)) << ta[i].first;
  }
  EXPECT_TRUE(torch::equal(worker::adam_steps(a), worker::adam_steps(b)));
  EXPECT_EQ(a.step, b.step);
}

}  // namespace

// Dense pairs (at tau 0.2 most pairs of 8-dimensional decoders are candidates, so the job turns
// dense), and candidate pairs found anew every 3 steps, so the checkpoint lies between searches.
TEST(Checkpoint, RestoringAndContinuingIsBitIdenticalToNeverStopping) {
  auto candidates = small_job();
  candidates.absorption.dot_threshold = 0.7;
  candidates.absorption.refresh_every = 3;
  for (const auto& cfg : {small_job(), candidates}) {
    auto dir = fresh_dir("roundtrip");
    TrainerRun uninterrupted(cfg), first(cfg);
    uninterrupted.trainer.start_fresh(batch(0));
    first.trainer.start_fresh(batch(0));
    EXPECT_EQ(sae::pair_tracker(first.trainer.state().penalties)->dense(), cfg.absorption.dot_threshold < 0.5) << "tau " << cfg.absorption.dot_threshold;
    first.train(7);
    worker::save_checkpoint(dir, first.trainer.state(), {{"note", "saved at 7"}});

    TrainerRun second(cfg);  // a new process: fresh initialisation, then the checkpoint
    auto restored = worker::restore_newest_checkpoint(dir, second.trainer.state());
    ASSERT_TRUE(restored.has_value());
    EXPECT_EQ(restored->step, 7);
    EXPECT_EQ(restored->progress["note"], "saved at 7");
    expect_same_state(first.trainer.state(), second.trainer.state());

    uninterrupted.train(15);
    second.train(15);
    expect_same_state(uninterrupted.trainer.state(), second.trainer.state());
  }
}

TEST(Checkpoint, KeepsTheNewestTwoAndFallsBackWhenTheNewestIsCorrupt) {
  auto dir = fresh_dir("fallback");
  auto cfg = small_job();
  TrainerRun run(cfg);
  run.trainer.start_fresh(batch(0));
  for (int64_t step : {2, 4, 6}) {
    run.train(step);
    worker::save_checkpoint(dir, run.trainer.state(), json::object());
  }
  std::vector<std::string> kept;
  for (const auto& e : fs::directory_iterator(dir / "checkpoints")) kept.push_back(e.path().filename().string());
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept, (std::vector<std::string>{"step-00000004", "step-00000006"}));

  {  // flip bytes inside the newest state file
    std::fstream f(dir / "checkpoints" / "step-00000006" / "state.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-16, std::ios::end);
    f.write("\x7f\x7f\x7f\x7f", 4);
  }
  fs::create_directories(dir / "checkpoints" / "step-00000009.tmp");  // a crash mid-write
  TrainerRun other(cfg);
  auto restored = worker::restore_newest_checkpoint(dir, other.trainer.state());
  ASSERT_TRUE(restored.has_value());
  EXPECT_EQ(restored->step, 4);

  fs::remove(dir / "checkpoints" / "step-00000004" / "meta.json");
  TrainerRun none(cfg);
  EXPECT_FALSE(worker::restore_newest_checkpoint(dir, none.trainer.state()).has_value());
  EXPECT_EQ(none.trainer.state().step, 0);
}

TEST(Checkpoint, AnEditedStepInMetaJsonIsRefusedAndTheOlderCheckpointUsed) {
  auto dir = fresh_dir("edited-step");
  auto cfg = small_job();
  TrainerRun run(cfg);
  run.trainer.start_fresh(batch(0));
  for (int64_t step : {2, 4}) {
    run.train(step);
    worker::save_checkpoint(dir, run.trainer.state(), json::object());
  }
  auto meta_file = dir / "checkpoints" / "step-00000004" / "meta.json";
  auto meta = sweep::read_json(meta_file);
  meta["step"] = 3;  // the tensors are untouched: only meta.json's own checksum can tell
  sweep::write_json_atomic(meta_file, meta);
  TrainerRun other(cfg);
  auto restored = worker::restore_newest_checkpoint(dir, other.trainer.state());
  ASSERT_TRUE(restored.has_value());
  EXPECT_EQ(restored->step, 2);
  EXPECT_EQ(other.trainer.state().step, 2);
}

TEST(Checkpoint, ACheckpointOfAnotherShapeIsRejected) {
  auto dir = fresh_dir("shape");
  auto cfg = small_job();
  TrainerRun run(cfg);
  run.train(1);
  worker::save_checkpoint(dir, run.trainer.state(), json::object());
  auto wider = cfg;
  wider.sae.d_sae = 24;
  TrainerRun other(wider);
  auto before = other.trainer.model().W_dec.clone();
  EXPECT_FALSE(worker::restore_newest_checkpoint(dir, other.trainer.state()).has_value());
  EXPECT_TRUE(torch::equal(before, other.trainer.model().W_dec)) << "a rejected checkpoint must change nothing";
}

TEST(FailureReason, IsOneLineWithoutLibTorchsBacktrace) {
  const c10::Error error("shape '[3]' is invalid for input of size 2\nHINT: reshape", "frame #0: c10::Error::Error\nframe #1: at::view");
  ASSERT_NE(std::string(error.what()).find("frame #1"), std::string::npos) << "what() carries the backtrace";
  const std::string reason = worker::error_text(error);
  EXPECT_EQ(reason.find('\n'), std::string::npos) << reason;
  EXPECT_EQ(reason.find("frame #"), std::string::npos) << reason;
  EXPECT_NE(reason.find("shape '[3]' is invalid for input of size 2 HINT: reshape"), std::string::npos) << reason;
  EXPECT_NE(worker::error_text(std::bad_alloc()).find("out of memory"), std::string::npos);
}

TEST(JobState, RoundTripsThroughJson) {
  JobState s;
  s.phase = JobPhase::Preempted;
  s.attempts = 3;
  s.failures = 1;
  s.owner = "node7:1234";
  s.host = "node7";
  s.pid = 1234;
  s.world_rank = 4;
  s.heartbeat = 1.7e9;
  s.step = 120;
  s.steps = 400;
  s.reason = "out of memory";
  auto back = job_state_from_json(sweep::to_json(s));
  EXPECT_EQ(sweep::to_json(back), sweep::to_json(s));
  EXPECT_EQ(sweep::to_json(s)["state"], "preempted");
  EXPECT_THROW(job_state_from_json({{"state", "sleeping"}}), std::runtime_error);
}

TEST(JobClaim, OnlyOneProcessHoldsAJobAndAGoneHolderIsTakenOver) {
  auto dir = fresh_dir("claim");
  auto me = launcher::this_process();
  launcher::ClaimOwner other{"elsewhere:1", "elsewhere", 1};
  EXPECT_TRUE(launcher::try_claim(dir, me, 300));
  EXPECT_FALSE(launcher::try_claim(dir, other, 300)) << "a live holder keeps its claim";
  launcher::release_claim(dir, other);  // not the holder: no effect
  EXPECT_FALSE(launcher::try_claim(dir, other, 300));
  launcher::release_claim(dir, me);
  EXPECT_TRUE(launcher::try_claim(dir, other, 300));

  // The holder on another host stopped sending heartbeats: stale after the timeout.
  JobState state;
  state.phase = JobPhase::Running;
  state.owner = other.owner;
  state.heartbeat = sweep::now_seconds() - 100;
  write_job_state(dir, state);
  fs::last_write_time(dir / "claim", fs::file_time_type::clock::now() - std::chrono::seconds(100));
  EXPECT_FALSE(launcher::try_claim(dir, me, 300));
  EXPECT_TRUE(launcher::try_claim(dir, me, 50));
  EXPECT_FALSE(fs::exists(dir / "claim.takeover"));
}

TEST(JobClaim, AClaimOfAProcessThatDiedOnThisHostIsTakenOverAtOnce) {
  auto dir = fresh_dir("dead");
  pid_t child = ::fork();
  if (child == 0) {
    launcher::try_claim(dir, launcher::this_process(), 300);
    ::_exit(0);
  }
  ::waitpid(child, nullptr, 0);
  ASSERT_TRUE(fs::exists(dir / "claim"));
  EXPECT_TRUE(launcher::try_claim(dir, launcher::this_process(), 300));
}

TEST(JobClaim, ManyProcessesRacingForOneJobGiveItToExactlyOne) {
  // Every child stays alive until all have tried (a dead winner's claim may rightly be taken over).
  auto dir = fresh_dir("race");
  int results[2], release[2];
  ASSERT_EQ(::pipe(results), 0);
  ASSERT_EQ(::pipe(release), 0);
  std::vector<pid_t> children;
  for (int i = 0; i < 8; ++i) {
    pid_t child = ::fork();
    if (child == 0) {
      ::close(release[1]);
      char won = launcher::try_claim(dir, launcher::this_process(), 300) ? '1' : '0';
      (void)!::write(results[1], &won, 1);
      char ignored;
      (void)!::read(release[0], &ignored, 1);  // returns at EOF, once the parent lets go
      ::_exit(0);
    }
    children.push_back(child);
  }
  int winners = 0;
  for (size_t i = 0; i < children.size(); ++i) {
    char won = '0';
    ASSERT_EQ(::read(results[0], &won, 1), 1);
    winners += won == '1';
  }
  ::close(release[1]);
  for (pid_t child : children) ::waitpid(child, nullptr, 0);
  EXPECT_EQ(winners, 1);
}

TEST(AtomicWrite, ProcessesWritingOneFileAtOnceNeverFailNorLeaveHalfAFile) {
  // Slurm array tasks sharing an output directory all write plan.json and sweep.toml at start.
  auto file = fresh_dir("atomic") / "plan.json";
  std::vector<pid_t> children;
  for (int i = 0; i < 6; ++i) {
    pid_t child = ::fork();
    if (child == 0) {
      try {
        for (int n = 0; n < 40; ++n) write_json_atomic(file, {{"writer", i}, {"padding", std::string(20000, 'x')}});
      } catch (const std::exception&) {
        ::_exit(1);
      }
      ::_exit(0);
    }
    children.push_back(child);
  }
  for (pid_t child : children) {
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "a writer failed";
  }
  auto written = read_json(file);
  EXPECT_EQ(written["padding"].get<std::string>().size(), 20000u);
}

namespace {

launcher::SweepSpec spec_with(int64_t steps, const std::vector<json>& rhos) {
  launcher::SweepSpec spec;
  spec.file = "s.toml";
  spec.name = "s";
  spec.base = json::object();
  for (const auto& key : launcher::config_schema()) {
    if (key.key.rfind("grid.", 0) != 0) spec.base[key.key] = key.default_value;
  }
  spec.base["train.steps"] = steps;
  spec.where["train.steps"] = "s.toml:7";
  spec.grid.push_back({"absorption.ratio_threshold", rhos, "s.toml:9"});
  return spec;
}

}  // namespace

TEST(SweepPlan, NewGridValuesAreAppendedAndExistingJobsKeepTheirPlace) {
  auto before = spec_with(100, {5.0, 10.0});
  auto old_plan = launcher::plan_json(before, launcher::expand_grid(before));
  auto after = spec_with(100, {2.0, 5.0, 10.0});
  auto merged = launcher::extend_plan(old_plan, "out/plan.json", after, launcher::expand_grid(after));
  ASSERT_EQ(merged.size(), old_plan["jobs"].size() + 1);
  for (size_t i = 0; i < old_plan["jobs"].size(); ++i) EXPECT_EQ(merged[i].id, old_plan["jobs"][i]["id"]);
  EXPECT_EQ(merged.back().params["absorption.ratio_threshold"], 2.0);
}

TEST(SweepPlan, ChangingWhatExistingJobsComputeIsRefusedWithTheKeyNamed) {
  auto before = spec_with(100, {5.0, 10.0});
  auto old_plan = launcher::plan_json(before, launcher::expand_grid(before));
  auto longer = spec_with(300, {5.0, 10.0});
  try {
    launcher::extend_plan(old_plan, "out/plan.json", longer, launcher::expand_grid(longer));
    FAIL() << "a changed step count must be refused";
  } catch (const launcher::ConfigError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("out/plan.json"), std::string::npos) << message;
    EXPECT_NE(message.find("train.steps: 100 -> 300 (s.toml:7)"), std::string::npos) << message;
    EXPECT_NE(message.find("--fresh"), std::string::npos) << message;
  }
  auto fewer = spec_with(100, {5.0});
  try {
    launcher::extend_plan(old_plan, "out/plan.json", fewer, launcher::expand_grid(fewer));
    FAIL() << "dropping a grid value must be refused";
  } catch (const launcher::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("grid.absorption.ratio_threshold: [5.0,10.0] -> [5.0]"), std::string::npos)
        << e.what();
  }
  auto regrouped = spec_with(100, {5.0, 10.0});
  regrouped.base["train.ranks_per_job"] = 4;
  regrouped.base["run.max_attempts"] = 5;
  EXPECT_EQ(launcher::extend_plan(old_plan, "out/plan.json", regrouped, launcher::expand_grid(regrouped)).size(),
            old_plan["jobs"].size())
      << "settings that do not change results may change on resume";
}

TEST(OutputCheck, TooLittleFreeSpaceIsRefusedWithTheFigures) {
  auto spec = spec_with(100, {5.0});
  spec.base["sae.d_sae"] = 16384;
  auto candidate_jobs = launcher::expand_grid(spec);
  const double with_candidates = launcher::bytes_needed(candidate_jobs, std::vector<int64_t>(candidate_jobs.size(), 768), 1);
  spec.base["absorption.pairs"] = "dense";
  auto jobs = launcher::expand_grid(spec);
  double needed = launcher::bytes_needed(jobs, std::vector<int64_t>(jobs.size(), 768), 1);
  EXPECT_GT(needed, 3.0 * 16384.0 * 16384.0 * 4.0) << "three checkpoints of the dense co-firing EMA alone";
  EXPECT_LT(with_candidates, 3.0 * 16384.0 * 16384.0 * 4.0) << "candidate pairs keep no d_sae x d_sae state";
  EXPECT_GT(with_candidates, 3.0 * 16384.0 * 768.0 * 4.0) << "but still three checkpoints of the weights";
  EXPECT_NO_THROW(launcher::check_free_space("out", needed, needed + 1));
  try {
    launcher::check_free_space("out", needed, 1024.0 * 1024.0 * 1024.0);
    FAIL();
  } catch (const launcher::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("out: the file system has 1.00 GiB free"), std::string::npos) << e.what();
  }
  try {  // a nearly full disk: the figure stays readable
    launcher::check_free_space("out", needed, 120.0 * 1024.0);
    FAIL();
  } catch (const launcher::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("out: the file system has 120.0 KiB free"), std::string::npos) << e.what();
  }
}
