// The probe-based absorption metric in whole sweeps: probes trained once per sweep and reused after
// a stop, labels checked up front and fingerprinted, `sweep data labels first-letter` refusing bad
// input, and the metric ranking trained SAEs as the ground truth's gt_absorption does.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <numeric>

#include "sharding/labels.h"
#include "sharding/npy.h"
#include "test_paths.h"
#include "tests/process_support.h"
#include "tests/sweep_outputs.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace sweep::testing;

namespace {

std::vector<fs::path> probe_files(const fs::path& out) {
  std::vector<fs::path> files;
  if (fs::exists(out / "probes"))
    for (const auto& entry : fs::directory_iterator(out / "probes")) files.push_back(entry.path());
  return files;
}

std::vector<std::string> sweep_words(const fs::path& out, const std::vector<std::string>& args) {
  std::vector<std::string> command = {"timeout", "600", SWEEP_BINARY};
  command.insert(command.end(), args.begin(), args.end());
  command.insert(command.end(), {"--out", out.string()});
  return command;
}

// Ranks with ties averaged, for Spearman's correlation.
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> out(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    for (size_t k = i; k <= j; ++k) out[order[k]] = (static_cast<double>(i) + static_cast<double>(j)) / 2;
    i = j + 1;
  }
  return out;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  auto ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double cov = 0, va = 0, vb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    cov += (ra[i] - ma) * (rb[i] - mb), va += (ra[i] - ma) * (ra[i] - ma), vb += (rb[i] - mb) * (rb[i] - mb);
  }
  return cov / std::sqrt(va * vb);
}

}  // namespace

TEST(ProbeSweep, ProbesAreTrainedOnceAndReusedAfterAStop) {
  const auto out = scratch() / "probes-stop";
  const std::vector<std::string> args = {quick_toml(), "--set", "data.labels=parents", "--set", "grid.include_baseline=false",
                                         "--set", "grid.absorption.ratio_threshold=[2.0]", "--set", "train.steps=1500",
                                         "--set", "train.checkpoint_every=50", "--set", "run.heartbeat_seconds=0.05"};
  {
    BackgroundRun run(sweep_words(out, args), "probes-stop-1");
    ASSERT_TRUE(run.wait_until(
        [&] {
          return fs::exists(out / "plan.json") && job_state_of(out, planned_job_ids(out).front()).value("step", 0) >= 300;
        },
        120))
        << run.log();
    EXPECT_EQ(run.signal_descendants("sweep", SIGTERM), 1);
    ASSERT_EQ(run.wait(120), 75) << run.log();
    EXPECT_NE(run.log().find("probes: trained 64 probe(s)"), std::string::npos) << run.log();
  }
  auto files = probe_files(out);
  ASSERT_EQ(files.size(), 1u);
  const auto written = fs::last_write_time(files[0]);

  auto resumed = run_command(sweep_words(out, args), "probes-stop-2");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.log;
  EXPECT_NE(resumed.log.find("probes: reusing " + files[0].string()), std::string::npos) << resumed.log;
  EXPECT_EQ(resumed.log.find("probes: trained"), std::string::npos) << "trained once per sweep";
  EXPECT_EQ(probe_files(out), files);
  EXPECT_EQ(fs::last_write_time(files[0]), written) << "the probe file is never rewritten";

  const auto id = planned_job_ids(out).front();
  auto result = read_json(out / "jobs" / id / "result.json");
  for (const char* metric : {"probe_absorption_fraction", "probe_full_absorption", "probe_f1", "probe_classes"})
    EXPECT_TRUE(result["metrics"].contains(metric)) << metric << " in " << result["metrics"].dump();
  EXPECT_EQ(result["probe_absorption"]["name"].size(), 64u) << "one entry per parent feature";
  auto report = read_json(out / "report.json");
  EXPECT_TRUE(report["jobs"][0].contains("probe_absorption"));
  EXPECT_TRUE(report["points"][0]["metrics"].contains("probe_absorption_fraction"));
  const auto md = read_text(out / "report.md");
  EXPECT_NE(md.find("Probe-based absorption per concept"), std::string::npos) << md;
  EXPECT_NE(md.find("probe absorption"), std::string::npos);
}

// Labels in a file: the exported synthetic data labels its own rows; labels for other rows are
// refused before anything runs; labels changed under a finished sweep are refused on its resume.
TEST(ProbeSweep, LabelFilesAreCheckedUpFrontAndFingerprinted) {
  const fs::path data = scratch() / "labelled.safetensors", wrong = scratch() / "wrong-rows.safetensors";
  auto exported = run_command({SWEEP_BINARY, "data", "export", quick_toml(), "--out", data.string(), "--tokens", "6000"},
                              "labels-export");
  ASSERT_EQ(exported.exit_code, 0) << exported.log;
  sweep::sharding::write_class_labels(wrong, torch::zeros({5999}, torch::kLong), {"a"});
  auto files = [&](const fs::path& labels, const std::string& rho = "[2.0]") {
    return std::vector<std::string>{quick_toml(), "--set", "data.source=files", "--set", "data.paths=[\"" + data.string() + "\"]",
                                    "--set", "data.ground_truth=" + data.string(), "--set", "data.eval_tokens=2000",
                                    "--set", "grid.include_baseline=false", "--set", "grid.absorption.ratio_threshold=" + rho,
                                    "--set", "data.labels=" + labels.string()};
  };
  auto refused = run_command(sweep_words(scratch() / "labels-wrong", files(wrong)), "labels-wrong");
  EXPECT_EQ(refused.exit_code, 2) << refused.log;
  EXPECT_NE(refused.log.find(wrong.string()), std::string::npos) << refused.log;
  EXPECT_NE(refused.log.find("labels for 5999 rows, but the activation files hold 6000 rows"), std::string::npos)
      << refused.log;
  EXPECT_FALSE(fs::exists(scratch() / "labels-wrong" / "jobs")) << "nothing ran";

  const auto out = scratch() / "labels-file";
  auto done = run_command(sweep_words(out, files(data)), "labels-file");
  ASSERT_EQ(done.exit_code, 0) << done.log;
  auto result = read_json(out / "jobs" / planned_job_ids(out).front() / "result.json");
  EXPECT_GT(result["metrics"]["probe_classes"].get<double>(), 0) << result["metrics"].dump();
  EXPECT_TRUE(result["metrics"].contains("gt_absorption")) << "both absorption measures, side by side";

  // Labels for the same rows that differ: the probes were trained on the old ones.
  const fs::path copy = scratch() / "labels-copy.safetensors";
  fs::copy_file(data, copy);
  auto first = run_command(sweep_words(scratch() / "labels-changed", files(copy)), "labels-changed-1");
  ASSERT_EQ(first.exit_code, 0) << first.log;
  sweep::sharding::write_class_labels(copy, torch::zeros({6000}, torch::kLong), {"a"});
  auto changed = run_command(sweep_words(scratch() / "labels-changed", files(copy, "[2.0, 5.0]")), "labels-changed-2");
  EXPECT_EQ(changed.exit_code, 2) << changed.log;
  // The labels file is fingerprinted in plan.json with the activations: the resume is refused before
  // the probes' own check (which still guards sweeps planned before labels were fingerprinted).
  EXPECT_NE(changed.log.find("changed since this sweep was planned"), std::string::npos) << changed.log;
  EXPECT_NE(changed.log.find(copy.string() + ": "), std::string::npos) << changed.log;
}

TEST(ProbeSweep, FirstLetterLabelsRefuseBadTokensAndVocabularies) {
  const fs::path tokens = scratch() / "tokens.npy", vocab = scratch() / "vocab.json", out = scratch() / "letters.safetensors";
  sweep::sharding::write_npy(tokens, torch::tensor({0, 1, 2, 1, 3, 9}, torch::kLong));
  std::ofstream(vocab) << R"(["<s>", "\u2581", "S", "a"])";
  auto run = [&](const std::vector<std::string>& more, const std::string& name) {
    std::vector<std::string> command = {SWEEP_BINARY, "data", "labels", "first-letter", "--tokens", tokens.string(),
                                        "--vocab", vocab.string(), "--out", out.string()};
    command.insert(command.end(), more.begin(), more.end());
    return run_command(command, name);
  };
  auto outside = run({"--bos-id", "0"}, "letters-outside");
  EXPECT_EQ(outside.exit_code, 2) << outside.log;
  EXPECT_NE(outside.log.find("row 5 holds token id 9"), std::string::npos) << outside.log;
  EXPECT_EQ(run({}, "letters-no-sequences").exit_code, 2) << "without --seq-len or --bos-id";
  sweep::sharding::write_npy(tokens, torch::tensor({0, 1, 2, 3, 1, 3}, torch::kLong));
  auto written = run({"--seq-len", "3"}, "letters-ok");
  ASSERT_EQ(written.exit_code, 0) << written.log;
  EXPECT_NE(written.log.find("rows per class: a 2 b 0"), std::string::npos) << written.log;
  EXPECT_NE(written.log.find("few rows for"), std::string::npos) << written.log;
  // <s> ▁ S | a ▁ a: "S" ends with its sequence at row 2, "a" at row 3, "a" at row 5.
  auto rows = sweep::sharding::LabelFile(out, 6).rows({0, 1, 2, 3, 4, 5});
  EXPECT_EQ(rows.labelled.to(torch::kLong).sum().item<int64_t>(), 3);
  EXPECT_EQ(rows.on[2][18].item<float>(), 1.0f);
  std::ofstream(vocab) << R"({"not": "a vocabulary"})";
  auto bad_vocab = run({"--seq-len", "3"}, "letters-bad-vocab");
  EXPECT_EQ(bad_vocab.exit_code, 2) << bad_vocab.log;
  EXPECT_NE(bad_vocab.log.find(vocab.string()), std::string::npos) << bad_vocab.log;
}

// The check against ground truth (README, "Probe-based absorption"): 14 SAEs of the embedded data
// (relu at 4 l1 values, topk, batchtopk and matryoshka, each with the penalty off and on at tau 0.5)
// scored by the probe metric and by gt_absorption. Measured at this commit: Spearman 0.89 for
// probe_full_absorption and 0.78 for probe_absorption_fraction (a random ranking of 14 passes 0.6
// with p < 0.02).
TEST(ProbeSweep, TheProbeMetricRanksTrainedSaesAsTheGroundTruthDoes) {
  const fs::path toml = scratch() / "probe-check.toml";
  std::ofstream(toml) << "name = \"probe-check\"\n"
                         "[data]\neval_tokens = 65536\nlabels = \"parents\"\n"
                         "[sae]\nd_sae = 320\nk = 12\nmatryoshka_widths = [64]\n"
                         "[train]\nsteps = 2000\nbatch_size = 1024\nlr = 4e-3\nwarmup_steps = 200\n"
                         "[absorption]\ndot_threshold = 0.5\nratio_threshold = 5.0\n"
                         "[grid]\ninclude_baseline = true\nseed = [1]\n";
  std::vector<double> gt, fraction, full;
  for (const auto& [name, axis] : {std::pair<std::string, std::string>{"relu", "grid.train.l1_penalty=[0.2, 0.4, 0.6, 1.0]"},
                                   {"others", "grid.sae.arch=[\"topk\", \"batchtopk\", \"matryoshka\"]"}}) {
    const auto out = scratch() / ("probe-check-" + name);
    auto r = run_command(sweep_words(out, {toml.string(), "--set", axis}), "probe-check-" + name);
    ASSERT_EQ(r.exit_code, 0) << r.log;
    const json report = read_json(out / "report.json");  // a temporary's member would dangle in the loop
    for (const auto& job : report["jobs"]) {
      const auto& m = job["metrics"];
      gt.push_back(m["gt_absorption"]), fraction.push_back(m["probe_absorption_fraction"]);
      full.push_back(m["probe_full_absorption"]);
    }
  }
  ASSERT_EQ(gt.size(), 14u);
  const double rho_full = spearman(gt, full), rho_fraction = spearman(gt, fraction);
  std::printf("Spearman with gt_absorption over %zu SAEs: probe_full_absorption %.3f, probe_absorption_fraction %.3f\n",
              gt.size(), rho_full, rho_fraction);
  EXPECT_GT(rho_full, 0.7);
  EXPECT_GT(rho_fraction, 0.6);
}
