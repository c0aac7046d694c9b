// End-to-end tests of the built `sweep` binary on sweeps/quick.toml: exit codes, report.json and
// report.md, every job directory, the SAELens export of every architecture (checked by an
// independent format checker, itself tested here on broken directories), a diverging grid
// point, and `sweep data export`.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sharding/safetensors.h"
#include "test_paths.h"
#include "tests/process_support.h"
#include "tests/saelens_format_check.h"

namespace fs = std::filesystem;
using nlohmann::json;
using sweep::testing::saelens_problems;
using namespace sweep::testing;

namespace {

// ----------------------------------------------------------------------------------------------
// Helpers

std::vector<std::string> read_lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// Runs the built `sweep` with `args`; returns its exit status and output.
RunResult run_sweep_binary(const std::vector<std::string>& args, const std::string& log_name) {
  std::vector<std::string> command = {SWEEP_BINARY};
  command.insert(command.end(), args.begin(), args.end());
  return run_command(command, log_name);
}

// Runs quick.toml with `overrides` (each a --set) into scratch()/name; the result is cached per
// name, so the tests of one run share it when they run in one process.
const RunResult& cached_quick_run(const std::string& name, const std::vector<std::string>& overrides = {}) {
  static std::map<std::string, RunResult> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  std::vector<std::string> args;
  for (const auto& o : overrides) {
    args.push_back("--set");
    args.push_back(o);
  }
  return cache.emplace(name, run_quick(0, name, args)).first->second;
}

std::string joined(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& p : problems) out += "\n  " + p;
  return out;
}

bool finite_number(const json& metrics, const std::string& key) {
  return metrics.contains(key) && metrics[key].is_number() && std::isfinite(metrics[key].get<double>());
}

// The rows of report.md's job table (lines starting with "| " under "## Jobs", not the header or
// separator).
std::vector<std::string> table_rows(const std::string& markdown) {
  std::vector<std::string> rows;
  std::istringstream in(markdown);
  bool header_seen = false, in_jobs = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) in_jobs = line == "## Jobs";
    if (!in_jobs || line.rfind("|", 0) != 0) continue;
    if (!header_seen) {
      header_seen = true;  // the header row
      continue;
    }
    if (line.rfind("|---", 0) == 0) continue;
    rows.push_back(line);
  }
  return rows;
}

// ----------------------------------------------------------------------------------------------
// The format checker on hand-made directories: a valid one passes, each breakage is reported.

class SaelensFormatCheck : public ::testing::Test {
 protected:
  static constexpr int64_t kDIn = 8, kDSae = 16;

  void SetUp() override {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = scratch() / ("check_" + test);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }

  json valid_cfg(const std::string& arch) const {
    json cfg = {{"architecture", arch},
                {"d_in", kDIn},
                {"d_sae", kDSae},
                {"dtype", "float32"},
                {"device", "cpu"},
                {"apply_b_dec_to_input", true},
                {"normalize_activations", "none"},
                {"metadata", {{"sae_lens_version", "6.0.0"}, {"hook_name", "blocks.0.hook_resid_post"},
                              {"model_name", "gpt2"}}}};
    if (arch == "topk") cfg["k"] = 4;
    return cfg;
  }

  std::vector<std::pair<std::string, torch::Tensor>> valid_weights(const std::string& arch) const {
    torch::manual_seed(0);
    auto w_dec = torch::randn({kDSae, kDIn});
    w_dec = w_dec / w_dec.norm(2, 1, true);
    std::vector<std::pair<std::string, torch::Tensor>> w = {{"W_enc", w_dec.t().contiguous()},
                                                            {"W_dec", w_dec},
                                                            {"b_enc", torch::zeros({kDSae})},
                                                            {"b_dec", torch::randn({kDIn})}};
    if (arch == "jumprelu") w.emplace_back("threshold", torch::full({kDSae}, 0.01));
    return w;
  }

  torch::Tensor valid_sparsity() const { return torch::log10(torch::rand({kDSae}) + 1e-10); }

  void write(const json& cfg, const std::vector<std::pair<std::string, torch::Tensor>>& weights,
             const torch::Tensor& sparsity) const {
    std::ofstream(dir_ / "cfg.json") << cfg.dump(2);
    sweep::sharding::write_safetensors(dir_ / "sae_weights.safetensors", weights);
    sweep::sharding::write_safetensors(dir_ / "sparsity.safetensors", {{"sparsity", sparsity}});
  }

  void write_valid(const std::string& arch) const { write(valid_cfg(arch), valid_weights(arch), valid_sparsity()); }

  // Replaces (or with an undefined tensor, removes) one weight of a valid `arch` directory.
  void write_with_weight(const std::string& arch, const std::string& name, const torch::Tensor& value) const {
    std::vector<std::pair<std::string, torch::Tensor>> weights;
    bool replaced = false;
    for (auto& [n, t] : valid_weights(arch)) {
      if (n != name) {
        weights.emplace_back(n, t);
      } else if (value.defined()) {
        weights.emplace_back(n, value);
        replaced = true;
      }
    }
    if (!replaced && value.defined()) weights.emplace_back(name, value);
    write(valid_cfg(arch), weights, valid_sparsity());
  }

  // Expects at least one problem, one of which mentions every one of `parts`.
  void expect_problem(std::initializer_list<std::string> parts) const {
    auto problems = saelens_problems(dir_);
    ASSERT_FALSE(problems.empty()) << "the checker accepted a broken directory";
    for (const auto& p : problems) {
      bool all = true;
      for (const auto& part : parts) all = all && p.find(part) != std::string::npos;
      if (all) return;
    }
    std::string wanted;
    for (const auto& part : parts) wanted += " \"" + part + "\"";
    ADD_FAILURE() << "no problem mentions" << wanted << "; problems:" << joined(problems);
  }

  fs::path dir_;
};

TEST_F(SaelensFormatCheck, AcceptsValidDirectoriesOfEveryArchitecture) {
  for (const std::string arch : {"standard", "topk", "jumprelu"}) {
    write_valid(arch);
    EXPECT_TRUE(saelens_problems(dir_).empty()) << arch << ":" << joined(saelens_problems(dir_));
  }
}

TEST_F(SaelensFormatCheck, ReportsAMissingDirectoryAndMissingFiles) {
  EXPECT_FALSE(saelens_problems(dir_ / "nowhere").empty());
  auto problems = saelens_problems(dir_);  // empty directory
  EXPECT_GE(problems.size(), 3u) << joined(problems);
  write_valid("standard");
  fs::remove(dir_ / "sparsity.safetensors");
  expect_problem({"sparsity.safetensors", "missing"});
  fs::remove(dir_ / "cfg.json");
  expect_problem({"cfg.json", "missing"});
}

TEST_F(SaelensFormatCheck, ReportsAMissingTensor) {
  write_with_weight("standard", "b_enc", torch::Tensor());
  expect_problem({"b_enc", "missing"});
  write_with_weight("jumprelu", "threshold", torch::Tensor());
  expect_problem({"threshold", "missing"});
}

TEST_F(SaelensFormatCheck, ReportsAWrongShape) {
  write_with_weight("standard", "W_dec", valid_weights("standard")[0].second);  // W_enc's [d_in, d_sae]
  expect_problem({"W_dec", "shape [8, 16]"});
  write_with_weight("standard", "b_dec", torch::zeros({kDIn + 1}));
  expect_problem({"b_dec", "shape"});
  write(valid_cfg("standard"), valid_weights("standard"), torch::zeros({kDSae, 1}));
  expect_problem({"sparsity", "shape"});
}

TEST_F(SaelensFormatCheck, ReportsAWrongArchitectureString) {
  auto cfg = valid_cfg("standard");
  cfg["architecture"] = "relu";  // sweep's own name, which SAELens does not know
  write(cfg, valid_weights("standard"), valid_sparsity());
  expect_problem({"architecture", "relu"});
  cfg.erase("architecture");
  write(cfg, valid_weights("standard"), valid_sparsity());
  expect_problem({"architecture"});
}

TEST_F(SaelensFormatCheck, ReportsBadConfigValues) {
  std::ofstream(dir_ / "cfg.json") << "{ not json";
  expect_problem({"cfg.json", "parse"});

  auto check = [&](const std::function<void(json&)>& edit, std::initializer_list<std::string> parts) {
    auto cfg = valid_cfg("topk");
    edit(cfg);
    write(cfg, valid_weights("topk"), valid_sparsity());
    expect_problem(parts);
  };
  check([](json& c) { c.erase("k"); }, {"k"});
  check([](json& c) { c["k"] = 4.5; }, {"k"});
  check([](json& c) { c["d_in"] = "8"; }, {"d_in"});
  check([](json& c) { c["d_sae"] = 16.0; }, {"d_sae"});
  check([](json& c) { c["dtype"] = "bfloat16"; }, {"dtype"});
  check([](json& c) { c.erase("device"); }, {"device"});
  check([](json& c) { c["apply_b_dec_to_input"] = 1; }, {"apply_b_dec_to_input"});
  check([](json& c) { c["normalize_activations"] = "expected_average_only_in"; }, {"normalize_activations"});
  check([](json& c) { c.erase("metadata"); }, {"metadata"});
  check([](json& c) { c["metadata"]["sae_lens_version"] = "5.9.1"; }, {"sae_lens_version"});
  check([](json& c) { c["metadata"].erase("hook_name"); }, {"hook_name"});
  check([](json& c) { c["metadata"]["model_name"] = nullptr; }, {"model_name"});
}

TEST_F(SaelensFormatCheck, ReportsWrongDtypeExtraTensorAndValues) {
  write_with_weight("standard", "b_enc", torch::zeros({kDSae}, torch::kDouble));
  expect_problem({"b_enc", "F64"});
  write_with_weight("standard", "threshold", torch::zeros({kDSae}));  // not a jumprelu
  expect_problem({"unexpected", "threshold"});
  write_with_weight("standard", "W_dec", 2.0 * valid_weights("standard")[1].second);
  expect_problem({"W_dec", "unit norm"});
  write_with_weight("standard", "b_dec", torch::full({kDIn}, std::nan("")));
  expect_problem({"b_dec", "NaN"});
  write(valid_cfg("standard"), valid_weights("standard"), torch::full({kDSae}, 0.5));
  expect_problem({"sparsity", "[-10, 0]"});
  write(valid_cfg("standard"), valid_weights("standard"), torch::full({kDSae}, -11.0));
  expect_problem({"sparsity", "[-10, 0]"});
}

// ----------------------------------------------------------------------------------------------
// quick.toml as it is: a relu grid over absorption.ratio_threshold plus one baseline.

void expect_succeeded(const RunResult& r) {
  ASSERT_EQ(r.exit_code, 0) << "sweep failed; its output:\n" << r.log;
}

TEST(EndToEnd, QuickSweepReportsEveryJobOfThePlan) {
  const auto& run = cached_quick_run("quick");
  expect_succeeded(run);
  const fs::path out = scratch() / "quick";
  ASSERT_TRUE(fs::exists(out / "plan.json"));
  ASSERT_TRUE(fs::exists(out / "report.json"));
  ASSERT_TRUE(fs::exists(out / "report.md"));
  EXPECT_TRUE(fs::exists(out / "report.html"));
  EXPECT_TRUE(fs::exists(out / "sweep.toml"));
  const json plan = read_json(out / "plan.json");
  const json report = read_json(out / "report.json");

  // quick.toml: ratio_threshold in [2.0, 5.0] and include_baseline = true.
  ASSERT_EQ(plan["jobs"].size(), 3u);
  ASSERT_EQ(report["jobs"].size(), plan["jobs"].size());
  EXPECT_EQ(report["counts"]["total"], 3);
  EXPECT_EQ(report["counts"]["done"], 3);
  EXPECT_EQ(report["counts"]["failed"], 0);

  std::string baseline_id;
  int baselines = 0;
  for (size_t i = 0; i < plan["jobs"].size(); ++i) {
    const json& planned = plan["jobs"][i];
    const json& job = report["jobs"][i];
    SCOPED_TRACE(planned["id"].get<std::string>());
    EXPECT_EQ(job["id"], planned["id"]) << "report.json lists the jobs in plan order";
    EXPECT_EQ(job["status"], "done");
    EXPECT_FALSE(job.contains("error"));
    EXPECT_EQ(job["baseline"], planned["baseline"]);
    if (job["baseline"].get<bool>()) {
      ++baselines;
      baseline_id = job["id"];
    }
    const json& m = job["metrics"];
    for (const char* key : {"mse", "explained_variance", "l0", "gt_mcc"}) {
      EXPECT_TRUE(finite_number(m, key)) << key << " in " << m.dump();
    }
    // Coverage: every matched (parent, child) latent pair first, then the highest-cosine pairs,
    // judged against the job's own tau and rho; the metric is the matched pairs' share in the region.
    const json& coverage = job["absorption_coverage"];
    EXPECT_EQ(coverage["tau"], planned["config"]["absorption.dot_threshold"]);
    EXPECT_EQ(coverage["rho"], planned["config"]["absorption.ratio_threshold"]);
    size_t matched = 0, inside = 0;
    for (size_t k = 0; k < coverage["cosine"].size(); ++k) {
      const bool region = coverage["active"][k].get<bool>() && coverage["cosine"][k].get<double>() > coverage["tau"].get<double>() &&
                          coverage["ratio"][k].get<double>() > coverage["rho"].get<double>();
      EXPECT_EQ(coverage["in_region"][k].get<bool>(), region) << k;
      if (!coverage["matched"][k].get<bool>()) continue;
      EXPECT_EQ(k, matched) << "matched pairs come first";
      ++matched;
      inside += region;
    }
    EXPECT_EQ(m["gt_pairs_matched"].get<double>(), static_cast<double>(matched));
    ASSERT_GT(matched, 0u);
    EXPECT_NEAR(m["gt_pairs_in_region"].get<double>(), static_cast<double>(inside) / matched, 1e-12);
    EXPECT_LE(coverage["cosine"].size() - matched, 200u) << "the 200 highest-cosine pairs, less the matched ones";
    EXPECT_GT(coverage["cosine"].size() - matched, 100u);
    int absorption_keys = 0;
    for (const auto& [key, value] : m.items()) {
      if (key.rfind("absorption_", 0) != 0) continue;
      ++absorption_keys;
      EXPECT_TRUE(value.is_number() && std::isfinite(value.get<double>())) << key << " = " << value.dump();
    }
    for (const char* key : {"absorption_pairs_mean", "absorption_active_fraction", "absorption_loss_mean"}) {
      EXPECT_TRUE(m.contains(key)) << key << " missing from " << m.dump();
    }
    EXPECT_GE(absorption_keys, 3);
    EXPECT_GE(m.value("explained_variance", -1.0), 0.0) << "a quick relu SAE explains some variance";
    EXPECT_LE(m.value("explained_variance", 2.0), 1.0);
    EXPECT_GE(m.value("mse", -1.0), 0.0);
    EXPECT_GE(m.value("l0", -1.0), 0.0);
    EXPECT_LE(m.value("l0", 1e9), 128.0) << "l0 cannot exceed d_sae";
  }
  EXPECT_EQ(baselines, 1);
  for (const auto& job : report["jobs"]) {
    if (!job["baseline"].get<bool>()) {
      EXPECT_EQ(job.value("baseline_id", ""), baseline_id) << job["id"];
    }
  }

  const std::string md = read_text(out / "report.md");
  const auto rows = table_rows(md);
  EXPECT_EQ(rows.size(), plan["jobs"].size()) << md;
  for (const auto& planned : plan["jobs"]) {
    const std::string id = planned["id"];
    int hits = 0;
    for (const auto& row : rows) hits += row.rfind("| " + id + " ", 0) == 0;
    EXPECT_EQ(hits, 1) << "one table row for job " << id << " in\n" << md;
  }
  EXPECT_NE(md.find(baseline_id + " (baseline)"), std::string::npos) << md;
  EXPECT_EQ(md.find("## Failed jobs"), std::string::npos) << md;
}

TEST(EndToEnd, QuickSweepWritesEveryJobDirectory) {
  const auto& run = cached_quick_run("quick");
  expect_succeeded(run);
  const fs::path out = scratch() / "quick";
  const json plan = read_json(out / "plan.json");
  ASSERT_FALSE(plan["jobs"].empty());
  for (const auto& planned : plan["jobs"]) {
    const std::string id = planned["id"];
    SCOPED_TRACE(id);
    const fs::path job_dir = out / "jobs" / id;
    ASSERT_TRUE(fs::is_directory(job_dir));

    ASSERT_TRUE(fs::exists(job_dir / "result.json"));
    const json result = read_json(job_dir / "result.json");
    EXPECT_EQ(result["id"], id);
    EXPECT_EQ(result["status"], "done");

    const auto lines = read_lines(job_dir / "metrics.jsonl");
    EXPECT_GE(lines.size(), 2u);
    int64_t previous_step = 0;
    for (const auto& line : lines) {
      json entry;
      ASSERT_NO_THROW(entry = json::parse(line)) << line;
      ASSERT_TRUE(entry.is_object()) << line;
      for (const char* key : {"step", "loss", "l0", "flagged_pairs"}) {
        EXPECT_TRUE(entry.contains(key) && entry[key].is_number()) << key << " in " << line;
      }
      if (!entry.contains("step") || !entry["step"].is_number_integer()) continue;
      EXPECT_GT(entry["step"].get<int64_t>(), previous_step) << "steps increase";
      previous_step = entry["step"].get<int64_t>();
      EXPECT_TRUE(finite_number(entry, "loss")) << line;
    }
    EXPECT_EQ(previous_step, planned["config"]["train.steps"].get<int64_t>()) << "the last line is the last step";

    const fs::path sae = job_dir / "sae";
    ASSERT_TRUE(fs::is_directory(sae));
    auto problems = saelens_problems(sae);
    EXPECT_TRUE(problems.empty()) << joined(problems);
    const json cfg = read_json(sae / "cfg.json");
    EXPECT_EQ(cfg["architecture"], "standard");
    EXPECT_EQ(cfg["d_in"], planned["config"]["data.d_in"]);
    EXPECT_EQ(cfg["d_sae"], planned["config"]["sae.d_sae"]);
  }
}

// ----------------------------------------------------------------------------------------------
// The other architectures: the run succeeds and every export loads as that architecture.

void expect_architecture_run(const std::string& name, const std::vector<std::string>& overrides,
                             const std::string& saelens_arch, const std::function<void(const json&, const json&)>& more) {
  const auto& run = cached_quick_run(name, overrides);
  expect_succeeded(run);
  const fs::path out = scratch() / name;
  const json report = read_json(out / "report.json");
  const json plan = read_json(out / "plan.json");
  ASSERT_EQ(report["jobs"].size(), plan["jobs"].size());
  ASSERT_FALSE(report["jobs"].empty());
  for (const auto& job : report["jobs"]) {
    const std::string id = job["id"];
    SCOPED_TRACE(id);
    EXPECT_EQ(job["status"], "done");
    EXPECT_TRUE(finite_number(job["metrics"], "mse")) << job["metrics"].dump();
    EXPECT_TRUE(finite_number(job["metrics"], "l0")) << job["metrics"].dump();
    const fs::path sae = out / "jobs" / id / "sae";
    auto problems = saelens_problems(sae);
    EXPECT_TRUE(problems.empty()) << joined(problems);
    if (!fs::exists(sae / "cfg.json")) continue;
    const json cfg = read_json(sae / "cfg.json");
    EXPECT_EQ(cfg["architecture"], saelens_arch);
    more(job, cfg);
  }
}

TEST(EndToEnd, TopKSweepExportsTopKSaes) {
  expect_architecture_run("topk", {"sae.arch=topk", "sae.k=8"}, "topk", [](const json& job, const json& cfg) {
    EXPECT_EQ(cfg["k"], 8);
    // SAELens folds decoder norms only when told activations are rescaled by them: exact here,
    // as the decoder rows are unit norm.
    EXPECT_EQ(cfg["rescale_acts_by_decoder_norm"], true);
    auto weights = sweep::sharding::read_safetensors(scratch() / "topk" / "jobs" / job["id"].get<std::string>() / "sae" /
                                                     "sae_weights.safetensors");
    auto norms = weights.at("W_dec").norm(2, 1);
    EXPECT_TRUE(torch::allclose(norms, torch::ones_like(norms), 1e-5, 1e-5));
    EXPECT_LE(job["metrics"].value("l0", 1e9), 8.0 + 1e-9) << "a topk SAE fires at most k latents";
  });
}

// BatchTopK trains on k x B activations per batch and is exported for inference as a jumprelu with
// its learned threshold (the same for every latent); held out, it fires about k latents per row.
TEST(EndToEnd, BatchTopKSweepExportsJumpReluSaesWithItsThreshold) {
  expect_architecture_run("batchtopk", {"sae.arch=batchtopk", "sae.k=8"}, "jumprelu", [&](const json& job, const json& cfg) {
    EXPECT_FALSE(cfg.contains("k")) << cfg.dump();
    const double l0 = job["metrics"].value("l0", 0.0);
    EXPECT_GT(l0, 8.0 / 3) << "the threshold keeps about k per row";
    EXPECT_LT(l0, 8.0 * 3);
    auto weights = sweep::sharding::read_safetensors(scratch() / "batchtopk" / "jobs" / job["id"].get<std::string>() /
                                                     "sae" / "sae_weights.safetensors");
    const auto& threshold = weights.at("threshold");
    EXPECT_GT(threshold.min().item<double>(), 0.0);
    EXPECT_EQ(threshold.min().item<double>(), threshold.max().item<double>()) << "one threshold for all latents";
  });
}

// Matryoshka is exported as BatchTopK is, with its prefixes' widths in the metadata.
TEST(EndToEnd, MatryoshkaSweepExportsJumpReluSaesWithItsWidths) {
  expect_architecture_run("matryoshka", {"sae.arch=matryoshka", "sae.k=8", "sae.matryoshka_widths=[16]"}, "jumprelu",
                          [&](const json& job, const json& cfg) {
                            EXPECT_EQ(cfg["metadata"]["matryoshka_widths"], json::array({16, 64})) << cfg.dump();
                            const double l0 = job["metrics"].value("l0", 0.0);
                            EXPECT_GT(l0, 8.0 / 3) << "the threshold keeps about k per row";
                            EXPECT_LT(l0, 8.0 * 3);
                          });
}

TEST(EndToEnd, JumpReluSweepExportsJumpReluSaes) {
  expect_architecture_run("jumprelu", {"sae.arch=jumprelu"}, "jumprelu", [](const json&, const json& cfg) {
    EXPECT_FALSE(cfg.contains("k")) << cfg.dump();
  });
}

// ----------------------------------------------------------------------------------------------
// A grid point that diverges: the others finish, the sweep exits 3, the failure is reported.
// train.lr = 1e6 does not do it (Adam's steps stay bounded; every latent dies but the loss stays
// finite), so one grid point gets features of magnitude 1e30, whose squared error overflows
// float32 at the first step.

TEST(EndToEnd, DivergingGridPointFailsThatJobOnly) {
  const auto& run = cached_quick_run("diverge", {"grid.data.magnitude_mean=[1.0, 1e30]",
                                          "grid.absorption.ratio_threshold=[5.0]", "grid.include_baseline=false"});
  ASSERT_EQ(run.exit_code, 3) << "a failed job must make the sweep exit with 3; output:\n" << run.log;
  const fs::path out = scratch() / "diverge";
  ASSERT_TRUE(fs::exists(out / "report.json"));
  ASSERT_TRUE(fs::exists(out / "report.md"));
  const json report = read_json(out / "report.json");
  ASSERT_EQ(report["jobs"].size(), 2u);
  EXPECT_EQ(report["counts"]["done"], 1);
  EXPECT_EQ(report["counts"]["failed"], 1);

  const std::string md = read_text(out / "report.md");
  EXPECT_EQ(table_rows(md).size(), 2u) << md;
  EXPECT_NE(md.find("## Failed jobs"), std::string::npos) << md;
  int failed = 0;
  for (const auto& job : report["jobs"]) {
    const std::string id = job["id"];
    SCOPED_TRACE(id);
    const double magnitude = job["params"]["data.magnitude_mean"].get<double>();
    const fs::path job_dir = out / "jobs" / id;
    const json result = read_json(job_dir / "result.json");
    if (magnitude > 1.0) {
      ++failed;
      EXPECT_EQ(job["status"], "failed");
      ASSERT_TRUE(job.contains("error") && job["error"].is_string()) << job.dump();
      const std::string error = job["error"];
      EXPECT_FALSE(error.empty());
      // Data of magnitude 1e30 overflows float32's squares: the error names the data, not the learning rate.
      EXPECT_NE(error.find("whose squares overflow float32"), std::string::npos) << error;
      EXPECT_EQ(result["status"], "failed");
      EXPECT_EQ(result.value("error", ""), error);
      EXPECT_FALSE(fs::exists(job_dir / "sae")) << "a failed job exports no SAE";
      // Listed under "Failed jobs" with its error.
      EXPECT_NE(md.find("- " + id + " "), std::string::npos) << md;
      EXPECT_NE(md.find(error), std::string::npos) << md;
      bool row_says_failed = false;
      for (const auto& row : table_rows(md)) {
        if (row.rfind("| " + id + " ", 0) == 0) row_says_failed = row.find("| failed |") != std::string::npos;
      }
      EXPECT_TRUE(row_says_failed) << md;
    } else {
      EXPECT_EQ(job["status"], "done");
      EXPECT_EQ(result["status"], "done");
      EXPECT_TRUE(saelens_problems(job_dir / "sae").empty()) << joined(saelens_problems(job_dir / "sae"));
    }
  }
  EXPECT_EQ(failed, 1);
}

// ----------------------------------------------------------------------------------------------
// `sweep data export`: the synthetic data set with its ground truth.

TEST(EndToEnd, DataExportWritesActivationsAndGroundTruth) {
  const int64_t n = 1000;
  const fs::path file = scratch() / "d.safetensors";
  auto run = run_sweep_binary({"data", "export", quick_toml(), "--set", "data.noise_std=0", "--out",
                               file.string(), "--tokens", std::to_string(n)},
                              "data_export");
  ASSERT_EQ(run.exit_code, 0) << run.log;
  ASSERT_TRUE(fs::exists(file));

  const auto header = sweep::sharding::read_safetensors_header(file);
  const std::map<std::string, std::string> dtypes = {
      {"activations", "F32"},         {"directions", "F32"},          {"parents", "I64"},
      {"feature_acts_indptr", "I64"}, {"feature_acts_indices", "I64"}, {"feature_acts_values", "F32"}};
  for (const auto& [name, dtype] : dtypes) {
    ASSERT_TRUE(header.tensors.count(name)) << name << " missing";
    EXPECT_EQ(header.tensors.at(name).dtype, dtype) << name;
  }

  auto t = sweep::sharding::read_safetensors(file);
  const auto& activations = t["activations"];
  const auto& directions = t["directions"];
  const auto& parents = t["parents"];
  const auto& indptr = t["feature_acts_indptr"];
  const auto& indices = t["feature_acts_indices"];
  const auto& values = t["feature_acts_values"];

  const int64_t d_in = 64;  // quick.toml keeps the default data.d_in
  ASSERT_EQ(activations.sizes().vec(), (std::vector<int64_t>{n, d_in}));
  ASSERT_EQ(directions.dim(), 2);
  ASSERT_EQ(directions.size(1), d_in);
  const int64_t n_features = directions.size(0);
  ASSERT_GT(n_features, 0);
  ASSERT_EQ(parents.sizes().vec(), (std::vector<int64_t>{n_features}));
  EXPECT_TRUE(((parents >= -1) & (parents < n_features)).all().item<bool>()) << "parents: -1 or a feature index";
  EXPECT_TRUE((parents == -1).any().item<bool>()) << "some features are roots";

  ASSERT_EQ(indptr.sizes().vec(), (std::vector<int64_t>{n + 1}));
  EXPECT_EQ(indptr[0].item<int64_t>(), 0);
  EXPECT_TRUE((indptr.slice(0, 1) >= indptr.slice(0, 0, n)).all().item<bool>()) << "indptr is non-decreasing";
  const int64_t nnz = indptr[n].item<int64_t>();
  ASSERT_GT(nnz, 0);
  ASSERT_EQ(indices.sizes().vec(), (std::vector<int64_t>{nnz}));
  ASSERT_EQ(values.sizes().vec(), (std::vector<int64_t>{nnz}));
  ASSERT_TRUE(((indices >= 0) & (indices < n_features)).all().item<bool>());
  EXPECT_TRUE((values > 0).all().item<bool>()) << "the CSR holds the active features only";

  // activations == CSR(feature_acts) @ directions (without noise).
  auto rows = torch::repeat_interleave(indptr.slice(0, 1) - indptr.slice(0, 0, n));
  ASSERT_EQ(rows.size(0), nnz);
  auto dense = torch::zeros({n, n_features}, torch::kDouble);
  dense.index_put_({rows, indices}, values.to(torch::kDouble), /*accumulate=*/true);
  auto expected = dense.matmul(directions.to(torch::kDouble));
  const double worst = (expected - activations.to(torch::kDouble)).abs().max().item<double>();
  EXPECT_LE(worst, 1e-5) << "largest |activations - feature_acts @ directions|";
}

}  // namespace

// A loss that stays finite but grows by orders of magnitude (train.lr = 1e3: every latent dies,
// explained variance about -1e9) and an SAE whose latents are all dead: both fail their job with
// the reason and a hint, and no verdict names such a job, nor a job whose baseline is one, best.

TEST(EndToEnd, AFiniteDivergenceOrAllLatentsDeadFailsTheJobAndNoVerdictPicksIt) {
  const auto& run = cached_quick_run("finite-divergence", {"grid.train.lr=[1e-3, 1e3]"});
  ASSERT_EQ(run.exit_code, 3) << run.log;
  const json report = read_json(scratch() / "finite-divergence" / "report.json");
  std::set<std::string> failed;
  for (const auto& job : report["jobs"]) {
    if (job["params"]["train.lr"].get<double>() < 1.0) {
      EXPECT_EQ(job["status"], "done") << job.dump();
      continue;
    }
    EXPECT_EQ(job["status"], "failed") << job.dump();
    const std::string error = job.value("error", "");
    EXPECT_NE(error.find("training diverged"), std::string::npos) << error;
    EXPECT_NE(error.find("lower train.lr"), std::string::npos) << error;
    failed.insert(job["id"].get<std::string>());
  }
  EXPECT_EQ(failed.size(), 3u);
  // No verdict picks a failed job: the best grid points hold finished jobs only.
  int picked = 0;
  for (const auto& best : report["verdicts"]["best"]) {
    if (!best["point"].is_string()) continue;
    for (const auto& job : report["jobs"]) {
      if (job["point"] != best["point"]) continue;
      ++picked;
      EXPECT_EQ(failed.count(job["id"].get<std::string>()), 0u) << best.dump();
    }
  }
  EXPECT_GT(picked, 0) << report["verdicts"]["best"].dump();

  const auto& dead = cached_quick_run("all-dead", {"sae.arch=jumprelu", "sae.init_threshold=1000", "grid.include_baseline=false",
                                                   "grid.absorption.ratio_threshold=[2.0]"});
  ASSERT_EQ(dead.exit_code, 3) << dead.log;
  const json dead_job = read_json(scratch() / "all-dead" / "report.json")["jobs"][0];
  EXPECT_EQ(dead_job["status"], "failed");
  EXPECT_NE(dead_job.value("error", "").find("every latent is dead"), std::string::npos) << dead_job.dump();
}

// ----------------------------------------------------------------------------------------------
// Progress while it runs: without a terminal, each job's leader logs progress lines at the set
// interval (step/steps, percent, tokens/s, ETA, loss, L0, flagged pairs), rank 0 the sweep's.

TEST(EndToEnd, RunningJobsLogProgressLinesAndTheSweepItsOwn) {
  const auto& run = cached_quick_run("progress", {"run.progress_seconds=0.01", "grid.include_baseline=false",
                                           "grid.absorption.ratio_threshold=[2.0]", "train.steps=400"});
  ASSERT_EQ(run.exit_code, 0) << run.log;
  std::regex line(R"(\[job [0-9a-f]{12} absorption\.ratio_threshold=2\.0\] step (\d+)/400 \((\d+)%\) [0-9.e+]+ tok/s )"
                  R"(ETA \d+:\d\d loss [0-9.e+-]+ L0 [0-9.]+ flagged pairs \d+)");
  std::vector<int> steps;
  for (auto it = std::sregex_iterator(run.log.begin(), run.log.end(), line); it != std::sregex_iterator(); ++it) {
    steps.push_back(std::stoi((*it)[1]));
    EXPECT_NEAR(std::stoi((*it)[2]), steps.back() / 4.0, 0.51) << "percent of 400 steps";
  }
  ASSERT_GE(steps.size(), 2u) << "progress lines at a steady interval, not just one:\n" << run.log;
  EXPECT_LT(steps.size(), 400u) << "not one line per step";
  EXPECT_EQ(steps.back(), 400);
  EXPECT_TRUE(std::is_sorted(steps.begin(), steps.end()));
  EXPECT_NE(run.log.find("sweep: 1/1 jobs finished"), std::string::npos) << run.log;
}

// Colour codes only where a person reads a terminal: not in files, not with NO_COLOR, and not
// under mpirun, whose ranks see a pseudo-terminal even when its output goes to a file.
TEST(EndToEnd, LogsAreColouredOnlyOnARealTerminal) {
  const std::string failing = quote(SWEEP_BINARY) + " report " + quote((scratch() / "no-such-sweep").string());
  auto in_terminal = [&](const std::string& command, const std::string& name) {
    return run_command({"script", "-qec", command, "/dev/null"}, name).log;  // `script` gives it a terminal
  };
  const std::string escape = "\x1b[";
  EXPECT_NE(in_terminal(failing, "colour-terminal").find(escape), std::string::npos) << "a terminal gets colours";
  EXPECT_EQ(in_terminal("NO_COLOR=1 " + failing, "colour-no-color").find(escape), std::string::npos);
  std::string under_mpirun;
  for (const auto& word : mpirun(1, 60)) under_mpirun += quote(word) + " ";
  EXPECT_EQ(in_terminal(under_mpirun + failing, "colour-mpirun").find(escape), std::string::npos);
  EXPECT_EQ(run_sweep_binary({"report", (scratch() / "no-such-sweep").string()}, "colour-file").log.find(escape), std::string::npos);
}

// A one-process sweep trains its jobs side by side (one per core, or run.jobs_per_process), each
// on its share of the cores: every job's weights and metrics are those of one after another, within
// float rounding (OpenBLAS may round a product differently with another thread count: it does on an
// AMD EPYC, not on the machine this test first ran on).
TEST(EndToEnd, JobsSideBySideInOneProcessGiveTheResultsOfOneAfterAnother) {
  auto apart = run_quick(0, "side-by-side-1", {"--set", "run.jobs_per_process=1"});
  ASSERT_EQ(apart.exit_code, 0) << apart.log;
  auto together = run_quick(0, "side-by-side-3", {"--set", "run.jobs_per_process=3"});
  ASSERT_EQ(together.exit_code, 0) << together.log;
  EXPECT_NE(together.log.find("3 job(s) side by side"), std::string::npos) << together.log;
  auto jobs = read_json(scratch() / "side-by-side-1" / "report.json")["jobs"];
  ASSERT_EQ(jobs.size(), 3u);
  for (const auto& job : jobs) {
    std::string id = job["id"];
    auto weights = [&](const std::string& run) {
      return sweep::sharding::read_safetensors(scratch() / run / "jobs" / id / "sae" / "sae_weights.safetensors");
    };
    const auto one = weights("side-by-side-1"), three = weights("side-by-side-3");
    ASSERT_EQ(one.size(), three.size());
    for (const auto& [name, tensor] : one) {
      const double scale = tensor.abs().max().item<double>();
      EXPECT_LE((three.at(name) - tensor).abs().max().item<double>(), 1e-3 * scale) << id << ": " << name << " differs";
    }
    auto metrics = [&](const std::string& run) { return read_json(scratch() / run / "jobs" / id / "result.json")["metrics"]; };
    const json a = metrics("side-by-side-1"), b = metrics("side-by-side-3");
    ASSERT_EQ(a.size(), b.size()) << id;
    for (const auto& [key, value] : a.items()) {
      if (!value.is_number()) continue;
      EXPECT_NEAR(b[key].get<double>(), value.get<double>(), 1e-4 * std::abs(value.get<double>()) + 1e-9) << id << " " << key;
    }
  }
}
