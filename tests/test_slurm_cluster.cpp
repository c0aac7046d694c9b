// `sweep submit` on a real one-node Slurm cluster (started by tests/slurm/cluster.sh, which sets
// SLURM_CONF): the batch job runs the sweep on 2 ranks under srun, every job done exactly once.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "test_paths.h"
#include "tests/process_support.h"

namespace fs = std::filesystem;
using namespace sweep::testing;

namespace {

// The job's state as squeue reports it (finished jobs stay listed for MinJobAge seconds).
std::string job_state(const std::string& id) {
  auto r = run_command({"squeue", "-h", "-t", "all", "-j", id, "-o", "%T"}, "squeue");
  return r.exit_code == 0 ? std::regex_replace(r.log, std::regex("\\s+"), "") : "squeue failed: " + r.log;
}

bool finished(const std::string& state) {
  return state == "COMPLETED" || state == "FAILED" || state == "CANCELLED" || state == "TIMEOUT" ||
         state == "NODE_FAIL" || state == "OUT_OF_MEMORY" || state == "BOOT_FAIL" || state == "DEADLINE" ||
         state.rfind("squeue failed", 0) == 0;
}

}  // namespace

TEST(SlurmCluster, SubmittedSweepRunsEveryJobOnceUnderSrun) {
  ASSERT_NE(std::getenv("SLURM_CONF"), nullptr) << "run this test through tests/slurm/cluster.sh run DIR ...";
  // The quick sweep, with its Slurm settings in the file: 2 ranks, so 2 groups share the 3 jobs.
  const fs::path file = scratch() / "quick.toml";
  std::ofstream(file) << read_text(std::string(SWEEP_SOURCE_DIR) + "/sweeps/quick.toml")
                      << "\n[slurm]\nntasks_per_node = 2\ntime = \"00:10:00\"\n";
  const fs::path out = scratch() / "run";
  auto start = std::chrono::steady_clock::now();
  auto submitted = run_command({SWEEP_BINARY, "submit", file.string(), "--out", out.string()}, "submit");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.log;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(submitted.log, m, std::regex(R"(submitted Slurm job (\d+))"))) << submitted.log;
  const std::string id = m[1];

  std::string state = job_state(id);
  while (!finished(state) && std::chrono::steady_clock::now() - start < std::chrono::seconds(90)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    state = job_state(id);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("Slurm job %s: %s after %.1f s (submit to end)\n", id.c_str(), state.c_str(), seconds);
  const std::string log = read_text(out / "slurm" / ("sweep-" + id + ".out"));
  ASSERT_EQ(state, "COMPLETED") << log;
  EXPECT_NE(log.find("sweep: exited with code 0"), std::string::npos) << log;
  // srun --mpi=pmix made one world of 2 ranks (two singletons would each run every job).
  EXPECT_NE(log.find("on 2 group(s) of 1 rank(s)"), std::string::npos) << log;

  auto plan = read_json(out / "plan.json");
  auto report = read_json(out / "report.json");
  ASSERT_EQ(report["jobs"].size(), plan["jobs"].size());
  EXPECT_EQ(report["counts"]["done"], plan["jobs"].size());
  std::map<std::string, int> starts;
  std::regex started(R"(job \d+/\d+ ([0-9a-f]{12}) )");
  for (std::sregex_iterator it(log.begin(), log.end(), started), end; it != end; ++it) ++starts[(*it)[1]];
  for (const auto& job : report["jobs"]) {
    EXPECT_EQ(job["status"], "done") << job["id"];
    EXPECT_EQ(starts[job["id"]], 1) << job["id"] << " must start exactly once\n" << log;
  }
}
