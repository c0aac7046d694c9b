// data.normalize = "expected_norm": the factor scales rows to a mean norm of sqrt(d_in); an SAE
// trained on scaled rows, with the factor folded into its weights, is the same SAE on raw rows; a
// sweep stores the factor in plan.json, keeps it on a re-run, and exports SAEs (in SAELens's
// layout) whose reconstruction of raw rows gives the metrics the sweep reported.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "config/job_settings.h"
#include "sae/fold_scale.h"
#include "sae/sae_model.h"
#include "sharding/dataset.h"
#include "sharding/normalization.h"
#include "sharding/safetensors.h"
#include "test_paths.h"
#include "tests/process_support.h"
#include "tests/saelens_format_check.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace sweep;
using namespace sweep::testing;

namespace {

// Codes and reconstructions of the folded SAE on raw rows against the trained one on scaled rows.
TEST(Normalization, TheFoldedSaeOnRawRowsIsTheTrainedSaeOnScaledRows) {
  torch::manual_seed(3);
  const double factor = 0.05;
  const auto raw = torch::randn({64, 16}) * 150.0 + 20.0;  // a residual stream's scale, off centre
  for (const char* arch : {"relu", "topk", "jumprelu", "batchtopk"}) {
    SCOPED_TRACE(arch);
    sae::SaeConfig cfg;
    cfg.arch = arch;
    cfg.d_in = 16;
    cfg.d_sae = 32;
    cfg.k = 4;
    cfg.init_threshold = 0.5;
    sae::Sae trained(cfg, 7);
    {
      torch::NoGradGuard no_grad;  // away from the initial state: biases matter
      trained.b_dec.copy_(torch::randn({16}));
      trained.b_enc.copy_(torch::randn({32}) * 0.1);
    }
    const auto folded = sae::fold_activation_scale(trained, factor);
    const auto on_scaled = trained.forward(raw * factor), on_raw = folded->forward(raw);
    EXPECT_TRUE(torch::allclose(on_raw.f, on_scaled.f, 1e-4, 1e-4)) << "the same codes";
    EXPECT_TRUE(torch::allclose(on_raw.x_hat, on_scaled.x_hat / factor, 1e-4, 1e-2)) << "x_hat' / factor";
    EXPECT_TRUE(torch::allclose(trained.W_dec.norm(2, 1), torch::ones({32}), 1e-5, 1e-5)) << "the trained SAE is untouched";
  }
}

TEST(Normalization, TheFactorScalesTheSampleToAMeanNormOfSqrtDIn) {
  sharding::DataConfig cfg;
  cfg.synthetic.d_in = 32;
  cfg.synthetic.magnitude_mean = 40.0;
  cfg.eval_tokens = 512;
  const auto data = sharding::open_dataset(cfg);
  const double factor = sharding::expected_norm_factor(*data);
  const auto sample = sharding::scaled_view(*data, factor)->train_rows(0, sharding::kNormSampleRows).activations;
  EXPECT_NEAR(sample.to(torch::kDouble).norm(2, 1).mean().item<double>(), std::sqrt(32.0), 1e-4);
  EXPECT_LT(factor, 0.2) << "rows of magnitude 40 are scaled down";
}

// A relu SAE's reconstruction of rows x by exported weights, as SAELens computes it.
torch::Tensor saelens_relu(const std::map<std::string, torch::Tensor>& w, const torch::Tensor& x, torch::Tensor& f) {
  f = torch::relu((x - w.at("b_dec")).mm(w.at("W_enc")) + w.at("b_enc"));
  return f.mm(w.at("W_dec")) + w.at("b_dec");
}

TEST(Normalization, ASweepStoresTheFactorAndExportsSaesOnTheRawScale) {
  const std::vector<std::string> args = {"--set", "data.normalize=expected_norm", "--set", "data.magnitude_mean=30",
                                         "--set", "train.steps=80"};
  auto run = run_quick(0, "normalized", args);
  ASSERT_EQ(run.exit_code, 0) << run.log;
  const fs::path out = scratch() / "normalized";
  const json plan = read_json(out / "plan.json");
  ASSERT_FALSE(plan["jobs"].empty());
  const json& config = plan["jobs"][0]["config"];
  ASSERT_TRUE(config.contains(launcher::kNormalizeFactorKey)) << config.dump();
  const double factor = config[launcher::kNormalizeFactorKey];
  // The definition, computed here: sqrt(d_in) over the mean norm of the first training rows.
  const auto data = sharding::open_dataset(launcher::to_data_config(config));
  const auto sample = data->train_rows(0, sharding::kNormSampleRows).activations.to(torch::kDouble);
  EXPECT_NEAR(factor, std::sqrt(static_cast<double>(data->d_in())) / sample.norm(2, 1).mean().item<double>(), 1e-9 * factor);
  EXPECT_NE(run.log.find("data.normalize = \"expected_norm\": rows of the synthetic data scaled by"), std::string::npos) << run.log;

  const auto eval = data->eval_rows(0, data->eval_size()).activations.to(torch::kDouble);
  for (const auto& job : plan["jobs"]) {
    const std::string id = job["id"];
    SCOPED_TRACE(id);
    EXPECT_EQ(job["config"][launcher::kNormalizeFactorKey], factor) << "one factor for the data source";
    const fs::path sae = out / "jobs" / id / "sae";
    const auto problems = saelens_problems(sae);
    EXPECT_TRUE(problems.empty()) << json(problems).dump();
    const json cfg = read_json(sae / "cfg.json");
    EXPECT_EQ(cfg["metadata"]["activation_norm_scaling_factor"], factor);
    EXPECT_EQ(cfg["normalize_activations"], "none") << "the exported SAE takes raw activations";
    auto weights = sharding::read_safetensors(sae / "sae_weights.safetensors");
    for (auto& [name, tensor] : weights) tensor = tensor.to(torch::kDouble);
    torch::Tensor f;
    const auto x_hat = saelens_relu(weights, eval, f);
    const double sse = (eval - x_hat).pow(2).sum().item<double>();
    const double variance = (eval - eval.mean(0)).pow(2).sum().item<double>();
    const json metrics = read_json(out / "jobs" / id / "result.json")["metrics"];
    EXPECT_NEAR(1.0 - sse / variance, metrics["explained_variance"].get<double>(), 1e-4);
    EXPECT_NEAR(sse / static_cast<double>(eval.numel()), metrics["mse"].get<double>(), 1e-4 * metrics["mse"].get<double>())
        << "mse on the raw scale";
    EXPECT_NEAR((f > 0).sum().item<double>() / static_cast<double>(eval.size(0)), metrics["l0"].get<double>(), 1e-3);
  }

  // A re-run keeps the plan's factor (and finds every job done).
  auto again = run_quick(0, "normalized", args);
  ASSERT_EQ(again.exit_code, 0) << again.log;
  EXPECT_EQ(read_json(out / "plan.json")["jobs"][0]["config"][launcher::kNormalizeFactorKey], factor);
  EXPECT_EQ(again.log.find("scaled by"), std::string::npos) << "not estimated again:\n" << again.log;
}

}  // namespace
