// A sweep directory damaged or starved under the tool, with the tool's own commands: unreadable
// or missing result, metrics and state files, a corrupt plan, a full disk during training and
// during the report, stop signals that reach one rank of a group, SIGHUP, and a killed owner in
// `sweep status`. None may crash the run, pass for success, or lose a finished result.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "sharding/npy.h"
#include "test_paths.h"
#include "tests/process_support.h"
#include "tests/sweep_outputs.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace sweep::testing;

namespace {

std::vector<std::string> sweep_args(const fs::path& out, const std::vector<std::string>& more = {}) {
  std::vector<std::string> command = {"timeout", "300", SWEEP_BINARY, quick_toml(), "--out", out.string()};
  command.insert(command.end(), more.begin(), more.end());
  return command;
}

RunResult sweep_report(const fs::path& out, const std::string& log_name) {
  return run_command({SWEEP_BINARY, "report", out.string()}, log_name);
}

// A finished quick sweep of 3 jobs, copied fresh for each test that damages it.
fs::path finished_copy(const std::string& name) {
  static const fs::path original = [] {
    auto r = run_quick(0, "damaged-original");
    EXPECT_EQ(r.exit_code, 0) << r.log;
    return scratch() / "damaged-original";
  }();
  auto copy = scratch() / name;
  fs::remove_all(copy);
  fs::copy(original, copy, fs::copy_options::recursive);
  return copy;
}

fs::path job_dir(const fs::path& out, size_t index) { return out / "jobs" / planned_job_ids(out).at(index); }

void overwrite(const fs::path& file, const std::string& text) { std::ofstream(file, std::ios::trunc) << text; }

// Every leftover temporary of an atomic write ("<name>.tmp.<pid>") under `dir`.
std::vector<std::string> temporaries(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(entry.path().string());
  }
  return found;
}

void expect_no_crash(const RunResult& r) {
  EXPECT_EQ(r.log.find("terminate called"), std::string::npos) << r.log;
  EXPECT_NE(r.exit_code, 134) << r.log;
}

// One job of quick.toml, `steps` long, with frequent heartbeats: long enough to act on while it runs.
std::vector<std::string> one_long_job(const std::string& steps) {
  return {"--set", "train.steps=" + steps, "--set", "run.heartbeat_seconds=0.05",
          "--set", "grid.include_baseline=false", "--set", "grid.absorption.ratio_threshold=[2.0]"};
}

// Waits until the first planned job has done at least `step` steps; false if the run ended first.
bool first_job_reaches(BackgroundRun& run, const fs::path& out, int step) {
  return run.wait_until(
      [&] { return fs::exists(out / "plan.json") && job_state_of(out, planned_job_ids(out).at(0)).value("step", 0) >= step; },
      120);
}

// A small tmpfs mounted for the test's lifetime (root only: the test is skipped elsewhere).
class SmallDisk {
 public:
  SmallDisk(const fs::path& at, const std::string& size) : at_(at) {
    fs::create_directories(at);
    mounted_ = std::system(("mount -t tmpfs -o size=" + size + " tmpfs " + quote(at.string()) + " 2>/dev/null").c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) std::system(("umount " + quote(at_.string())).c_str());
  }
  bool mounted() const { return mounted_; }
  // Fills the disk with one file until only about `leave` bytes are free.
  void fill_leaving(uintmax_t leave) {
    std::ofstream filler(filler_file(), std::ios::binary | std::ios::app);
    const std::string block(4096, 'x');
    while (fs::space(at_).available > leave + block.size() && filler.write(block.data(), block.size())) filler.flush();
  }
  void free_space() { fs::remove(filler_file()); }

 private:
  fs::path filler_file() const { return at_ / "filler"; }
  fs::path at_;
  bool mounted_ = false;
};

}  // namespace

TEST(DamagedState, ADoneJobWithAnUnreadableResultIsTrainedAgainToTheSameResult) {
  auto out = finished_copy("unreadable-result");
  auto dir = job_dir(out, 1);
  const json before = read_json(dir / "result.json");
  overwrite(dir / "result.json", "{\"status\": \"do");
  auto r = run_command(sweep_args(out), "unreadable-result-rerun");
  expect_no_crash(r);
  ASSERT_EQ(r.exit_code, 0) << r.log;
  EXPECT_NE(r.log.find("result.json: not valid JSON"), std::string::npos) << r.log;
  EXPECT_EQ(read_json(dir / "result.json")["metrics"], before["metrics"]);
  EXPECT_TRUE(fs::exists(dir / "result.json.damaged-1")) << "the damaged file is kept";
  EXPECT_EQ(read_json(out / "report.json")["counts"]["done"], 3);
}

TEST(DamagedState, ADoneStateWithoutResultIsReportedDamagedNotSilentThenTrainedAgain) {
  auto out = finished_copy("missing-result");
  auto dir = job_dir(out, 1);  // a penalised job: a placeholder result would say the penalty never fired
  const json before = read_json(dir / "result.json");
  fs::remove(dir / "result.json");

  auto report = sweep_report(out, "missing-result-report");
  EXPECT_EQ(report.exit_code, 0) << report.log;
  EXPECT_NE(report.log.find("result.json is missing"), std::string::npos) << report.log;
  auto written = read_json(out / "report.json");
  EXPECT_EQ(written["counts"]["damaged"], 1);
  EXPECT_EQ(written["counts"]["done"], 2);
  EXPECT_TRUE(written["absorption_never_fired"].empty()) << written["absorption_never_fired"];

  auto r = run_command(sweep_args(out), "missing-result-rerun");
  expect_no_crash(r);
  ASSERT_EQ(r.exit_code, 0) << r.log;
  EXPECT_EQ(read_json(dir / "result.json")["metrics"], before["metrics"]) << "the result is regenerated";
  EXPECT_EQ(read_json(out / "report.json")["counts"]["done"], 3);
}

TEST(DamagedState, UnreadableMetricsAndStateFilesNeverAbortTheSweep) {
  auto out = finished_copy("unreadable-metrics");
  overwrite(job_dir(out, 0) / "metrics.jsonl", "{\"step\": 25}\nnot json\n");
  overwrite(job_dir(out, 2) / "state.json", "\x01\x02");

  auto report = sweep_report(out, "unreadable-metrics-report");
  EXPECT_EQ(report.exit_code, 0) << report.log;
  EXPECT_NE(report.log.find("metrics.jsonl:2: not valid JSON"), std::string::npos) << report.log;
  EXPECT_EQ(read_json(out / "report.json")["counts"]["damaged"], 2);

  auto r = run_command(sweep_args(out), "unreadable-metrics-rerun");
  expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 0) << r.log;
  EXPECT_EQ(read_json(out / "report.json")["counts"]["done"], 3) << r.log;
}

// Wrong file types where the tool's directories or the data belong: a plain file as a job's
// directory is kept aside and the job trained again; a FIFO in data.paths is refused at once
// (opening it would wait for a writer), naming it.
TEST(DamagedState, WrongFileTypesNeitherAbortTheSweepNorBlockIt) {
  auto out = finished_copy("wrong-types");
  const auto dir = job_dir(out, 1);
  fs::remove_all(dir);
  overwrite(dir, "not a directory");
  auto r = run_command(sweep_args(out), "wrong-types-rerun");
  expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 0) << r.log;
  EXPECT_NE(r.log.find(dir.string() + " is not a directory"), std::string::npos) << r.log;
  EXPECT_TRUE(fs::is_directory(dir));
  bool kept = false;
  for (const auto& entry : fs::directory_iterator(out / "jobs")) {
    kept = kept || (entry.path().filename().string().rfind(dir.filename().string() + ".damaged-", 0) == 0 &&
                    fs::is_regular_file(entry.path()));
  }
  EXPECT_TRUE(kept) << "the file is kept aside, not deleted";
  EXPECT_EQ(read_json(out / "report.json")["counts"]["done"], 3);

  const auto data = scratch() / "fifo-data";
  fs::create_directories(data);
  ASSERT_EQ(::mkfifo((data / "a.npy").c_str(), 0600), 0);
  auto fifo = run_command({"timeout", "20", SWEEP_BINARY, quick_toml(), "--out", (scratch() / "fifo-out").string(), "--set",
                           "data.source=files", "--set", "data.paths=[\"" + (data / "*.npy").string() + "\"]"},
                          "fifo-data");
  expect_no_crash(fifo);
  EXPECT_EQ(fifo.exit_code, 2) << fifo.log;
  EXPECT_NE(fifo.log.find((data / "a.npy").string() + ": is not a regular file"), std::string::npos) << fifo.log;
}

// `sweep status` and the report read a job's files alike: a done job whose result is damaged is
// damaged in both, and the status says a re-run trains it again.
TEST(DamagedState, StatusAndReportAgreeOnADamagedJob) {
  auto out = finished_copy("status-agrees");
  overwrite(job_dir(out, 0) / "result.json", "{not json");
  auto status = run_command({SWEEP_BINARY, "status", out.string()}, "status-agrees-status");
  EXPECT_EQ(status.exit_code, 0) << status.log;
  const auto id = job_dir(out, 0).filename().string();
  const auto line = status.log.substr(status.log.find(id), 40);
  EXPECT_NE(line.find("damaged"), std::string::npos) << status.log;
  EXPECT_NE(status.log.find("a re-run trains it again"), std::string::npos) << status.log;
  EXPECT_NE(status.log.find("1 damaged"), std::string::npos) << status.log;
  auto report = sweep_report(out, "status-agrees-report");
  EXPECT_EQ(read_json(out / "report.json")["counts"]["damaged"], 1) << report.log;
}

// A finished job whose exported SAE is damaged or missing is not done: the report and a re-run
// check the export's checksums in result.json, and the job is trained again to the same SAE.
TEST(DamagedState, ADoneJobWithADamagedExportIsTrainedAgain) {
  auto out = finished_copy("damaged-export");
  const auto weights = job_dir(out, 0) / "sae" / "sae_weights.safetensors";
  const auto original = read_text(weights);
  fs::resize_file(weights, fs::file_size(weights) / 2);
  fs::remove(job_dir(out, 1) / "sae" / "cfg.json");
  auto report = sweep_report(out, "damaged-export-report");
  EXPECT_EQ(report.exit_code, 0) << report.log;
  EXPECT_EQ(read_json(out / "report.json")["counts"]["damaged"], 2) << report.log;
  EXPECT_NE(report.log.find(weights.string()), std::string::npos) << "names the file\n" << report.log;

  auto r = run_command(sweep_args(out), "damaged-export-rerun");
  expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 0) << r.log;
  EXPECT_EQ(read_json(out / "report.json")["counts"]["done"], 3) << r.log;
  EXPECT_EQ(read_text(weights), original) << "trained again to the same SAE";
  EXPECT_TRUE(fs::exists(job_dir(out, 1) / "sae" / "cfg.json"));
}

TEST(DamagedState, ACorruptPlanIsRefusedNamingTheFileAndWhatToDo) {
  auto out = finished_copy("corrupt-plan");
  for (const std::string& text : {std::string("{\"jo"), std::string("{\"sweep\": \"quick\", \"jobs\": 3}")}) {
    overwrite(out / "plan.json", text);
    auto r = run_command(sweep_args(out), "corrupt-plan");
    EXPECT_EQ(r.exit_code, 2) << r.log;
    EXPECT_NE(r.log.find((out / "plan.json").string() + ": not"), std::string::npos) << r.log;
    EXPECT_NE(r.log.find("--fresh"), std::string::npos) << r.log;
  }
}

TEST(FullDisk, DuringTrainingIsAFailureWithoutTemporariesAndARerunFinishes) {
  auto mount = scratch() / "full-mid";
  SmallDisk disk(mount, "8m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  auto out = mount / "out";
  const std::vector<std::string> longer = {"--set", "train.steps=3000", "--set", "run.heartbeat_seconds=0.05"};
  BackgroundRun run(sweep_args(out, longer), "full-mid");
  ASSERT_TRUE(run.wait_until([&] { return fs::exists(out / "plan.json") && fs::exists(job_dir(out, 0) / "result.json") &&
                                          job_state_of(out, planned_job_ids(out).at(1)).value("step", 0) > 0; },
                             120))
      << run.log();
  disk.fill_leaving(8 * 1024);
  int code = run.wait(120);
  EXPECT_NE(code, 0) << run.log();
  EXPECT_NE(code, -1) << "killed by a signal:\n" << run.log();
  EXPECT_EQ(run.log().find("terminate called"), std::string::npos) << run.log();
  EXPECT_EQ(run.log().find("will write the report"), std::string::npos) << run.log();
  EXPECT_TRUE(temporaries(out).empty()) << ::testing::PrintToString(temporaries(out));
  EXPECT_FALSE(fs::exists(out / "report.html"));

  disk.free_space();
  auto rerun = run_command(sweep_args(out, longer), "full-mid-rerun");
  EXPECT_EQ(rerun.exit_code, 0) << rerun.log;
  EXPECT_EQ(read_json(out / "report.json")["counts"]["done"], 3) << rerun.log;
}

TEST(FullDisk, TheReportIsWrittenWholeOrLeftAsItWas) {
  auto mount = scratch() / "full-report";
  SmallDisk disk(mount, "8m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  auto out = mount / "out";
  ASSERT_EQ(run_command(sweep_args(out), "full-report-first").exit_code, 0);
  std::map<std::string, std::string> before;
  for (const auto* name : {"report.json", "report.md", "report.html"}) before[name] = read_text(out / name);
  ASSERT_GT(before["report.html"].size(), 400u * 1024);
  disk.fill_leaving(300 * 1024);  // room for report.json and report.md, not for report.html

  auto r = sweep_report(out, "full-report");
  EXPECT_EQ(r.exit_code, 5) << r.log;
  EXPECT_NE(r.log.find("No space left on device"), std::string::npos) << r.log;
  for (const auto& [name, text] : before) EXPECT_EQ(read_text(out / name), text) << name << " was changed";
  EXPECT_TRUE(temporaries(out).empty()) << ::testing::PrintToString(temporaries(out));

  auto rerun = run_command(sweep_args(out), "full-report-rerun");  // the up-front check counts the report
  EXPECT_EQ(rerun.exit_code, 2) << rerun.log;
  EXPECT_NE(rerun.log.find("the report"), std::string::npos) << rerun.log;
}

// The three report files are replaced together or not at all: with report.html a directory that
// cannot be replaced, report.json and report.md stay as they were and no temporary is left.
TEST(FullDisk, TheReportFilesAreReplacedTogetherOrNotAtAll) {
  auto out = finished_copy("report-together");
  const auto json_before = read_text(out / "report.json"), md_before = read_text(out / "report.md");
  fs::remove(out / "report.html");
  fs::create_directories(out / "report.html" / "blocker");
  overwrite(job_dir(out, 0) / "metrics.jsonl", "not json\n");  // the new report would differ
  auto r = sweep_report(out, "report-together");
  EXPECT_EQ(r.exit_code, 5) << r.log;
  EXPECT_NE(r.log.find("report.html is not a regular file"), std::string::npos) << r.log;
  EXPECT_EQ(read_text(out / "report.json"), json_before);
  EXPECT_EQ(read_text(out / "report.md"), md_before);
  EXPECT_TRUE(temporaries(out).empty());
  for (const auto& entry : fs::directory_iterator(out)) {
    EXPECT_EQ(entry.path().filename().string().find(".old."), std::string::npos) << entry.path();
  }
}

TEST(Stop, ASignalToOneRankOfAGroupPreemptsOnlyTheRunningJob) {
  auto out = scratch() / "one-rank-signalled";
  std::vector<std::string> command = mpirun(2, 300);
  command.insert(command.end(), {SWEEP_BINARY, quick_toml(), "--out", out.string(), "--set", "train.ranks_per_job=2", "--set",
                                 "train.steps=4000", "--set", "run.heartbeat_seconds=0.05"});
  BackgroundRun run(command, "one-rank-signalled");
  std::string first;
  json state;
  ASSERT_TRUE(run.wait_until(
      [&] {
        if (!fs::exists(out / "plan.json")) return false;
        first = planned_job_ids(out).at(0);
        state = job_state_of(out, first);
        return state.value("step", 0) >= 100;
      },
      120))
      << run.log();
  int signalled = 0;
  for (int pid : run.descendants("sweep")) {
    if (pid != state["pid"].get<int>()) signalled += ::kill(pid, SIGTERM) == 0;  // the rank that is not the leader
  }
  ASSERT_EQ(signalled, 1);
  EXPECT_EQ(run.wait(120), 75) << run.log();
  auto ids = planned_job_ids(out);
  EXPECT_EQ(job_state_of(out, first)["state"], "preempted");
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_NE(job_state_of(out, ids[i]).value("state", "pending"), "preempted") << ids[i] << "\n" << run.log();
  }
  EXPECT_EQ(run.log().find("checkpointed"), std::string::npos) << run.log();
}

TEST(Stop, SighupStopsLikeSigtermAndTheRerunFinishes) {
  auto out = scratch() / "sighup";
  const auto longer = one_long_job("4000");
  BackgroundRun run(sweep_args(out, longer), "sighup");
  ASSERT_TRUE(first_job_reaches(run, out, 100)) << run.log();
  ASSERT_EQ(run.signal_descendants("sweep", SIGHUP), 1);
  EXPECT_EQ(run.wait(120), 75) << run.log();
  EXPECT_EQ(job_state_of(out, planned_job_ids(out).at(0))["state"], "preempted");
  auto rerun = run_command(sweep_args(out, longer), "sighup-rerun");
  EXPECT_EQ(rerun.exit_code, 0) << rerun.log;
}

TEST(Stop, ASignalDuringTheFinalEvaluationStopsThereAndTheRerunEvaluatesOnly) {
  auto out = scratch() / "stop-in-eval";
  // 1e6 held-out rows: seconds of evaluation after a fraction of a second of training.
  const std::vector<std::string> slow_eval = {"--set", "grid.include_baseline=false", "--set", "grid.absorption.ratio_threshold=[2.0]",
                                              "--set", "data.eval_tokens=1000000"};
  BackgroundRun run(sweep_args(out, slow_eval), "stop-in-eval");
  auto metrics = [&] { return job_dir(out, 0) / "metrics.jsonl"; };
  ASSERT_TRUE(run.wait_until(
      [&] { return fs::exists(out / "plan.json") && fs::exists(metrics()) && read_text(metrics()).find("\"step\":200") != std::string::npos; },
      120))
      << run.log();
  ASSERT_EQ(run.signal_descendants("sweep", SIGTERM), 1);
  EXPECT_EQ(run.wait(120), 75) << run.log();
  EXPECT_EQ(job_state_of(out, planned_job_ids(out).at(0))["state"], "preempted") << run.log();
  EXPECT_TRUE(fs::exists(job_dir(out, 0) / "checkpoints" / "step-00000200")) << run.log();
  EXPECT_FALSE(fs::exists(job_dir(out, 0) / "result.json"));

  auto rerun = run_command(sweep_args(out, slow_eval), "stop-in-eval-rerun");
  ASSERT_EQ(rerun.exit_code, 0) << rerun.log;
  const json result = read_json(job_dir(out, 0) / "result.json");
  EXPECT_EQ(result["train"]["resumed_from_step"], 200) << "only the evaluation was left to do";
  EXPECT_GT(result["train"]["final_loss"].get<double>(), 0.0) << "the final loss survives the stop";
}

TEST(Fresh, IsRefusedWhileAnotherProcessRunsAJobOfTheDirectory) {
  auto out = scratch() / "fresh-live";
  const auto longer = one_long_job("3000");
  BackgroundRun run(sweep_args(out, longer), "fresh-live");
  ASSERT_TRUE(first_job_reaches(run, out, 1)) << run.log();
  auto fresh = run_command(sweep_args(out, [&] { auto a = longer; a.push_back("--fresh"); return a; }()), "fresh-live-fresh");
  EXPECT_EQ(fresh.exit_code, 2) << fresh.log;
  EXPECT_NE(fresh.log.find("is being run by"), std::string::npos) << fresh.log;
  EXPECT_FALSE(fs::exists(out.string() + ".old-1"));
  EXPECT_EQ(run.wait(120), 0) << run.log();
  EXPECT_EQ(read_json(out / "report.json")["counts"]["done"], 1) << "the live run's result stays where it ran";
}

// --fresh moves aside a sweep's output directory and nothing else: not a file, a FIFO or a device
// that --out names, nor a directory without plan.json. "DIR/" names DIR.
TEST(Fresh, MovesAsideOnlyASweepsOutputDirectory) {
  const fs::path file = scratch() / "fresh-file", fifo = scratch() / "fresh-fifo", other = scratch() / "fresh-other";
  std::ofstream(file) << "not a sweep\n";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_directories(other);
  std::ofstream(other / "notes.txt") << "someone's notes\n";
  for (const auto& path : {file, fifo, other}) {
    auto r = run_command(sweep_args(path, {"--fresh"}), "fresh-refused-" + path.filename().string());
    EXPECT_EQ(r.exit_code, 2) << r.log;
    EXPECT_NE(r.log.find(path.string()), std::string::npos) << r.log;
    EXPECT_FALSE(fs::exists(path.string() + ".old-1")) << path << " was moved";
  }
  EXPECT_EQ(read_text(file), "not a sweep\n");
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_TRUE(fs::exists(other / "notes.txt"));

  const auto out = scratch() / "fresh-slash";
  ASSERT_EQ(run_command(sweep_args(out), "fresh-slash-1").exit_code, 0);
  auto again = run_command(sweep_args(out.string() + "/", {"--fresh"}), "fresh-slash-2");
  ASSERT_EQ(again.exit_code, 0) << again.log;
  EXPECT_TRUE(fs::exists(out.string() + ".old-1" + "/plan.json")) << again.log;
  EXPECT_TRUE(fs::exists(out / "report.json")) << again.log;
}

TEST(Status, AJobWhoseProcessIsGoneOnThisHostIsStaleAtOnce) {
  auto out = finished_copy("status-gone");
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);  // its pid now names no process
  auto file = job_dir(out, 0) / "state.json";
  auto state = read_json(file);
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  state["state"] = "running";
  state["host"] = host;
  state["pid"] = child;
  state["owner"] = std::string(host) + ":" + std::to_string(child);
  state["heartbeat"] = static_cast<double>(::time(nullptr));  // fresh: only the pid tells
  overwrite(file, state.dump());
  auto r = run_command({SWEEP_BINARY, "status", out.string()}, "status-gone");
  EXPECT_EQ(r.exit_code, 0) << r.log;
  EXPECT_NE(r.log.find("1 stale"), std::string::npos) << r.log;
  EXPECT_EQ(r.log.find("running"), std::string::npos) << r.log;
}

// Messages that said the wrong thing or nothing: each names what happened and what to do.
// A job claimed under a pid that now names another process (the claimant crashed and its pid was
// reused): the claim names the process by pid and start time, so the job is taken over at once and
// the sweep finishes with its report, never exit 0 waiting on a process that is not running it.
TEST(Status, AClaimWhosePidWasReusedIsTakenOver) {
  auto out = finished_copy("pid-reused");
  const auto dir = job_dir(out, 1);
  fs::remove(dir / "result.json");
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  const int live = ::getpid();  // a live process, but not the one that claimed the job
  const std::string owner = std::string(host) + ":" + std::to_string(live) + "@1";  // started at another time
  auto state = read_json(dir / "state.json");
  state["state"] = "running";
  state["host"] = host;
  state["pid"] = live;
  state["owner"] = owner;
  state["heartbeat"] = static_cast<double>(::time(nullptr));
  overwrite(dir / "state.json", state.dump());
  overwrite(dir / "claim", json{{"owner", owner}, {"host", host}, {"pid", live}}.dump());
  auto status = run_command({SWEEP_BINARY, "status", out.string()}, "pid-reused-status");
  EXPECT_NE(status.log.find("1 stale"), std::string::npos) << status.log;
  auto r = run_command(sweep_args(out), "pid-reused-rerun");
  EXPECT_EQ(r.exit_code, 0) << r.log;
  EXPECT_EQ(r.log.find("will write the report"), std::string::npos) << r.log;
  EXPECT_EQ(read_json(out / "report.json")["counts"]["done"], 3) << r.log;
}

// Sizes beyond the machine are refused up front with exit 2, naming what is too large, before any
// work: a million-point grid, an SAE too wide for the available memory, a synthetic data set too
// large to score, a billion held-out rows, and an export too large to hold. (Measured on the idle
// 2-core machine: 0.40-0.77 s each, as long as refusing a misspelt key takes, 0.76 s: LibTorch's
// and MPI's start-up. Asserted under 5 s, for a loaded CI machine, far below what running any of
// them would take.)
TEST(Sizes, AreRefusedUpFrontNamingWhatIsTooLarge) {
  std::string thousand;
  for (int i = 0; i < 1000; ++i) thousand += (i ? "," : "") + std::to_string(i);
  struct Case {
    std::string name;
    std::vector<std::string> command;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"size-grid", sweep_args(scratch() / "size-grid", {"--set", "grid.seed=[" + thousand + "]", "--set", "grid.data.seed=[" + thousand + "]"}),
       "more than the 100000 jobs a sweep may hold"},
      {"size-d-sae", sweep_args(scratch() / "size-d-sae", {"--set", "sae.d_sae=2000000"}), "this machine has available now"},
      {"size-roots", sweep_args(scratch() / "size-roots", {"--set", "data.n_roots=100000", "--set", "data.orthogonalize_steps=0"}),
       "data.n_roots"},
      {"size-eval", sweep_args(scratch() / "size-eval", {"--set", "data.eval_tokens=1000000000"}),
       "data.eval_tokens = 1000000000: must be in [1, 16777216]"},
      {"size-export", {SWEEP_BINARY, "data", "export", quick_toml(), "--out", (scratch() / "huge.safetensors").string(), "--tokens",
                       "100000000000"},
       "lower --tokens"},
  };
  for (const auto& c : cases) {
    const auto start = std::chrono::steady_clock::now();
    auto r = run_command(c.command, c.name);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.exit_code, 2) << c.name << "\n" << r.log;
    EXPECT_NE(r.log.find(c.says), std::string::npos) << c.name << "\n" << r.log;
    EXPECT_LT(seconds, 5.0) << c.name;
    std::printf("%s refused in %.2f s\n", c.name.c_str(), seconds);
  }
  EXPECT_FALSE(fs::exists(scratch() / "huge.safetensors"));
}

TEST(Messages, SayWhatHappenedAndWhatToDo) {
  auto exporting = [&](const fs::path& out, const std::string& name) {
    return run_command({SWEEP_BINARY, "data", "export", quick_toml(), "--out", out.string(), "--tokens", "100"}, name);
  };
  auto npy = exporting(scratch() / "g.npy", "msg-export-npy");
  EXPECT_EQ(npy.exit_code, 2) << npy.log;
  EXPECT_NE(npy.log.find("name it *.safetensors"), std::string::npos) << npy.log;
  EXPECT_FALSE(fs::exists(scratch() / "g.npy"));
  fs::create_directories(scratch() / "taken.safetensors");
  auto directory = exporting(scratch() / "taken.safetensors", "msg-export-dir");
  EXPECT_EQ(directory.exit_code, 2) << directory.log;
  EXPECT_NE(directory.log.find("is a directory"), std::string::npos) << directory.log;
  auto nowhere = exporting(scratch() / "no-such-dir" / "x.safetensors", "msg-export-nowhere");
  EXPECT_EQ(nowhere.exit_code, 5) << nowhere.log << " (no uncaught exception)";
  EXPECT_FALSE(fs::exists(scratch() / "no-such-dir")) << "nothing half-written is left";

  fs::create_directories(scratch() / "not-a-plan");
  std::ofstream(scratch() / "not-a-plan" / "plan.json") << R"({"sweep": "x"})";
  auto status = run_command({SWEEP_BINARY, "status", (scratch() / "not-a-plan").string()}, "msg-status");
  EXPECT_EQ(status.exit_code, 2) << status.log;
  EXPECT_NE(status.log.find((scratch() / "not-a-plan" / "plan.json").string() + ": not a sweep plan"), std::string::npos)
      << status.log;

  auto brackets = run_command(sweep_args(scratch() / "msg-glob", {"--set", "data.source=files", "--set", "data.paths=[\"x[1].npy\"]"}),
                              "msg-glob");
  EXPECT_EQ(brackets.exit_code, 2) << brackets.log;
  EXPECT_NE(brackets.log.find("[ and ] are glob syntax"), std::string::npos) << brackets.log;

  const auto toml = scratch() / "newline.toml";
  std::ofstream(toml) << "name = \"two\\nlines\"\n";
  auto newline = run_command({SWEEP_BINARY, toml.string()}, "msg-newline");
  EXPECT_EQ(newline.exit_code, 2) << newline.log;
  EXPECT_NE(newline.log.find("control characters"), std::string::npos) << newline.log;

  auto huge_int = run_command(sweep_args(scratch() / "msg-int", {"--set", "train.steps=18446744073709551615"}), "msg-int");
  EXPECT_EQ(huge_int.exit_code, 2) << huge_int.log;
  EXPECT_NE(huge_int.log.find("train.steps = 18446744073709551615 is beyond the 64-bit integer range"), std::string::npos)
      << huge_int.log;

  // Activations whose squares overflow float32: the data is named, not the learning rate.
  const auto huge = scratch() / "huge-acts";
  fs::create_directories(huge);
  sweep::sharding::write_npy(huge / "a.npy", torch::rand({2000, 16}) * 1e20);
  auto overflow = run_command(sweep_args(scratch() / "msg-overflow",
                                         {"--set", "data.source=files", "--set", "data.paths=[\"" + (huge / "a.npy").string() + "\"]",
                                          "--set", "data.eval_tokens=200", "--set", "grid.include_baseline=false", "--set",
                                          "grid.absorption.ratio_threshold=[2.0]"}),
                              "msg-overflow");
  EXPECT_NE(overflow.log.find("whose squares overflow float32; scale the activations down"), std::string::npos) << overflow.log;
  EXPECT_EQ(overflow.log.find("lower train.lr"), std::string::npos) << overflow.log;
}

// A stop that arrives while MPI starts or the sweep is planned exits 75 (resumable), not 143: the
// handlers are in before either. (Before main() the process is still loading LibTorch, about 0.3 s
// here; a signal then takes its default action.) The signal is sent as soon as the process shows a
// SIGTERM handler in /proc (SigCgt), that is at the earliest moment it can count.
TEST(Stop, ASignalDuringStartUpOrPlanningExitsResumable) {
  const auto out = scratch() / "stop-early";
  BackgroundRun run(sweep_args(out), "stop-early");
  auto handles_sigterm = [&] {
    for (int pid : run.descendants("sweep")) {
      std::ifstream status("/proc/" + std::to_string(pid) + "/status");
      for (std::string line; std::getline(status, line);) {
        if (line.rfind("SigCgt:", 0) == 0 && (std::stoull(line.substr(7), nullptr, 16) >> (SIGTERM - 1) & 1)) return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(run.wait_until(handles_sigterm, 30)) << run.log();
  const bool planned = fs::exists(out / "plan.json");
  EXPECT_EQ(run.signal_descendants("sweep", SIGTERM), 1);
  EXPECT_EQ(run.wait(120), 75) << run.log();
  EXPECT_FALSE(planned) << "the signal came before the plan was written";
  auto rerun = run_command(sweep_args(out), "stop-early-rerun");
  EXPECT_EQ(rerun.exit_code, 0) << rerun.log;
}
