// `sweep submit` on a real one-node Slurm cluster (started by tests/slurm/cluster.sh, which sets
// SLURM_CONF): a sweep under srun, a preempted sweep that requeues itself, a job array of two tasks.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "test_paths.h"
#include "tests/process_support.h"
#include "tests/sweep_outputs.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace sweep::testing;

namespace {

using Clock = std::chrono::steady_clock;

// The state of each task of a Slurm job as squeue lists it (finished jobs stay for MinJobAge).
std::vector<std::string> task_states(const std::string& id) {
  auto r = run_command({"squeue", "-h", "-t", "all", "-j", id, "-o", "%T"}, "squeue");
  if (r.exit_code != 0) return {"squeue failed: " + r.log};
  std::vector<std::string> states;
  std::istringstream lines(r.log);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) states.push_back(line);
  }
  return states;
}

bool finished(const std::string& state) {
  return state == "COMPLETED" || state == "FAILED" || state == "CANCELLED" || state == "TIMEOUT" ||
         state == "NODE_FAIL" || state == "OUT_OF_MEMORY" || state == "BOOT_FAIL" || state == "DEADLINE" ||
         state.rfind("squeue failed", 0) == 0;
}

// Waits (bounded) until every task of job `id` has ended, `tasks` of them; returns their states.
std::vector<std::string> wait_for_end(const std::string& id, size_t tasks, double seconds) {
  auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  auto states = task_states(id);
  auto all_finished = [&] {
    if (states.size() < tasks) return false;
    for (const auto& s : states) {
      if (!finished(s)) return false;
    }
    return true;
  };
  while (!all_finished() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    states = task_states(id);
  }
  return states;
}

// `Restarts=N` from scontrol: how many times Slurm requeued the job.
int restart_count(const std::string& id) {
  auto r = run_command({"scontrol", "show", "job", id}, "scontrol");
  std::smatch m;
  return std::regex_search(r.log, m, std::regex(R"(Restarts=(\d+))")) ? std::stoi(m[1]) : -1;
}

// A sweep file: quick.toml's job shape with `steps` steps, one job per ratio threshold (plus the
// baseline), and the given [slurm] section.
fs::path sweep_file(const std::string& name, int steps, const std::string& ratios, const std::string& slurm) {
  fs::path file = scratch() / (name + ".toml");
  std::ofstream(file) << "name = \"" << name << "\"\n"
                      << "[data]\neval_tokens = 4096\n[sae]\nd_sae = 64\n"
                      << "[train]\nsteps = " << steps
                      << "\nbatch_size = 256\nlr = 1e-3\nwarmup_steps = 20\nl1_penalty = 0.15\nlog_every = 25\n"
                      << "checkpoint_every = 100\n[absorption]\ndot_threshold = 0.3\n"
                      << "[run]\nheartbeat_seconds = 0.1\n"  // progress in state.json, for the test to watch
                      << "jobs_per_process = 1\n"            // one job at a time: the order of jobs is known
                      << "[grid]\n\"absorption.ratio_threshold\" = " << ratios << "\ninclude_baseline = true\n"
                      << "[slurm]\n" << slurm;
  return file;
}

// `sweep submit FILE --out OUT extra...`; returns the Slurm job id.
std::string submit(const fs::path& file, const fs::path& out, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> command = {SWEEP_BINARY, "submit", file.string(), "--out", out.string()};
  command.insert(command.end(), extra.begin(), extra.end());
  auto submitted = run_command(command, "submit");
  EXPECT_EQ(submitted.exit_code, 0) << submitted.log;
  std::smatch m;
  EXPECT_TRUE(std::regex_search(submitted.log, m, std::regex(R"(submitted Slurm job (\d+))"))) << submitted.log;
  return m.empty() ? "" : m[1].str();
}

// How many times each job was started, from the "job i/n <id> ..." lines of the given logs.
std::map<std::string, int> job_starts(const std::vector<std::string>& logs) {
  std::map<std::string, int> starts;
  std::regex started(R"(job \d+/\d+ ([0-9a-f]{12}) )");
  for (const auto& log : logs) {
    for (std::sregex_iterator it(log.begin(), log.end(), started), end; it != end; ++it) ++starts[(*it)[1]];
  }
  return starts;
}

// The same sweep file run without Slurm in one process: the results an uninterrupted run gives.
fs::path uninterrupted(const fs::path& file, const std::string& name) {
  fs::path out = scratch() / name;
  auto r = run_command({"timeout", "300", SWEEP_BINARY, file.string(), "--out", out.string()}, name);
  EXPECT_EQ(r.exit_code, 0) << r.log;
  return out;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The cluster is the one tests/slurm/cluster.sh started; it sets SLURM_CONF.
class SlurmCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("SLURM_CONF"), nullptr) << "run this test through tests/slurm/cluster.sh run DIR ...";
  }
};

}  // namespace

TEST_F(SlurmCluster, SubmittedSweepRunsEveryJobOnceUnderSrun) {
  // 2 ranks, so 2 groups share the 3 jobs; --set reaches the runs in the allocation.
  const fs::path file = sweep_file("srun", 200, "[2.0, 5.0]", "ntasks_per_node = 2\ntime = \"00:10:00\"\n");
  const fs::path out = scratch() / "srun";
  auto start = Clock::now();
  const std::string id = submit(file, out, {"--set", "train.steps=150"});
  ASSERT_FALSE(id.empty());
  auto states = wait_for_end(id, 1, 90);
  std::printf("Slurm job %s: %s after %.1f s (submit to end)\n", id.c_str(), states.at(0).c_str(), seconds_since(start));
  const std::string log = read_text(out / "slurm" / ("sweep-" + id + ".out"));
  ASSERT_EQ(states, std::vector<std::string>{"COMPLETED"}) << log;
  EXPECT_NE(log.find("sweep: exited with code 0"), std::string::npos) << log;
  // srun --mpi=pmix made one world of 2 ranks (two singletons would each run every job).
  EXPECT_NE(log.find("on 2 group(s) of 1 rank(s)"), std::string::npos) << log;

  auto report = read_json(out / "report.json");
  auto ids = planned_job_ids(out);
  ASSERT_EQ(report["jobs"].size(), ids.size());
  EXPECT_EQ(report["counts"]["done"], ids.size());
  auto starts = job_starts({log});
  for (const auto& job : ids) {
    EXPECT_EQ(starts[job], 1) << job << " must start exactly once\n" << log;
    EXPECT_EQ(read_json(out / "jobs" / job / "result.json")["train"]["steps"], 150) << "--set train.steps=150";
  }
}

TEST_F(SlurmCluster, PreemptedSweepCheckpointsRequeuesItselfAndEndsAsIfUninterrupted) {
  // One rank runs the baseline, then the penalised job; the warning signal lands in the second.
  const fs::path file = sweep_file("preempt", 2000, "[2.0]", "time = \"00:10:00\"\nmax_requeues = 2\n");
  const fs::path out = scratch() / "preempt";
  auto start = Clock::now();
  const std::string id = submit(file, out);
  ASSERT_FALSE(id.empty());
  auto deadline = Clock::now() + std::chrono::seconds(90);
  std::vector<std::string> ids;
  while (Clock::now() < deadline) {
    if (fs::exists(out / "plan.json")) {
      ids = planned_job_ids(out);
      if (job_state_of(out, ids.at(1)).value("step", 0) >= 500) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(ids.size(), 2u);
  ASSERT_EQ(job_state_of(out, ids[0]).value("state", ""), "done") << "the baseline runs first on the one rank";
  double signalled_at = seconds_since(start);
  // What Slurm sends before the time limit (--signal=B:USR1@...): to the batch shell only.
  auto sent = run_command({"scancel", "--signal=USR1", "--batch", id}, "scancel");
  ASSERT_EQ(sent.exit_code, 0) << sent.log;

  auto states = wait_for_end(id, 1, 150);
  double ended_at = seconds_since(start);
  const std::string log = read_text(out / "slurm" / ("sweep-" + id + ".out"));
  ASSERT_EQ(states, std::vector<std::string>{"COMPLETED"}) << log;
  int restarts = restart_count(id);
  std::printf("Slurm job %s: USR1 at %.1f s, requeued %d time(s), COMPLETED at %.1f s (from submission)\n",
              id.c_str(), signalled_at, restarts, ended_at);
  EXPECT_EQ(restarts, 1) << log;
  EXPECT_NE(log.find("sweep: exited with code 75"), std::string::npos) << log;
  EXPECT_NE(log.find("requeueing (restart 1 of at most 2)"), std::string::npos) << log;
  EXPECT_NE(log.find("sweep: exited with code 0"), std::string::npos) << log;

  auto baseline = job_state_of(out, ids[0]), penalised = job_state_of(out, ids[1]);
  EXPECT_EQ(baseline["attempts"], 1) << "a finished job is not run again after the requeue";
  EXPECT_EQ(penalised["attempts"], 2) << "started, then resumed from its checkpoint";
  auto resumed_from = read_json(out / "jobs" / ids[1] / "result.json")["train"]["resumed_from_step"];
  EXPECT_GE(resumed_from.get<int>(), 500) << "resumed from the checkpoint written at the stop";
  auto starts = job_starts({log});
  EXPECT_EQ(starts[ids[0]], 1) << log;
  EXPECT_EQ(starts[ids[1]], 2) << log;

  auto reference = uninterrupted(file, "preempt-reference");
  for (const auto& job : ids) expect_same_results(reference, out, job);
}

TEST_F(SlurmCluster, TwoArrayTasksShareOneSweepAndRunEveryJobExactlyOnce) {
  // 2 tasks of one rank each, on the node's 2 cores at once, claiming the 4 jobs from one directory.
  const fs::path file = sweep_file("array", 1000, "[2.0, 3.0, 5.0]", "array = 2\ntime = \"00:10:00\"\n");
  const fs::path out = scratch() / "array";
  auto start = Clock::now();
  const std::string id = submit(file, out);
  ASSERT_FALSE(id.empty());
  auto states = wait_for_end(id, 2, 120);
  std::printf("Slurm array job %s: tasks %s after %.1f s (submit to end)\n", id.c_str(),
              json(states).dump().c_str(), seconds_since(start));
  std::vector<std::string> logs;
  for (int task = 0; task < 2; ++task) {
    logs.push_back(read_text(out / "slurm" / ("sweep-" + id + "_" + std::to_string(task) + ".out")));
  }
  ASSERT_EQ(states, (std::vector<std::string>{"COMPLETED", "COMPLETED"})) << logs[0] << logs[1];

  auto ids = planned_job_ids(out);
  ASSERT_EQ(ids.size(), 4u);
  auto starts = job_starts(logs);
  for (const auto& job : ids) {
    EXPECT_EQ(starts[job], 1) << job << " must start exactly once\n" << logs[0] << logs[1];
    auto state = job_state_of(out, job);
    EXPECT_EQ(state["state"], "done") << job;
    EXPECT_EQ(state["attempts"], 1) << job;
  }
  for (int task = 0; task < 2; ++task) {
    EXPECT_GE(job_starts({logs[task]}).size(), 1u) << "array task " << task << " ran no job: the tasks did not share "
                                                   << "the sweep\n" << logs[task];
  }
  auto report = read_json(out / "report.json");
  EXPECT_EQ(report["counts"]["done"], 4) << "the task that finished last writes the complete report";
}
