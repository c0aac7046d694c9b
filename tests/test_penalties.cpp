// Methods as plug-ins: training penalties through their interface (sae/penalty.h), OrtSAE's
// orthogonality penalty against a brute-force loss and gradient, its chunks and its effect on
// training; a penalty and an architecture (sae/architecture.h) registered in this file alone,
// planned, trained and exported; and the behaviour the move behind the interfaces kept: every
// shipped sweep's job ids and quick.toml's metrics as recorded before it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/grid.h"
#include "config/config_error.h"
#include "config/job_settings.h"
#include "config/sweep_file.h"
#include "sae/penalties/orthogonality.h"
#include "sae/losses.h"
#include "sae/sae_model.h"
#include "sae/saelens_export.h"
#include "test_paths.h"
#include "tests/process_support.h"
#include "worker/checkpoint.h"
#include "worker/communicator.h"
#include "worker/trainer.h"

namespace fs = std::filesystem;
using namespace sweep;
using nlohmann::json;

namespace {

torch::Tensor unit_rows(int64_t rows, int64_t cols, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto w = torch::randn({rows, cols}, gen);
  return w / w.norm(2, 1, true);
}

// The loss written the obvious way: every latent, every other latent of its chunk.
torch::Tensor brute_force_orthogonality(const torch::Tensor& W, const torch::Tensor& order, int64_t chunk_size) {
  const int64_t d = W.size(0), chunks = (d + chunk_size - 1) / chunk_size;
  std::vector<int64_t> chunk_of(d);
  for (int64_t c = 0, at = 0; c < chunks; ++c) {
    const int64_t size = d / chunks + (c < d % chunks ? 1 : 0);
    for (int64_t i = 0; i < size; ++i) chunk_of[order[at + i].item<int64_t>()] = c;
    at += size;
  }
  auto total = torch::zeros({});
  for (int64_t i = 0; i < d; ++i) {
    torch::Tensor best;
    for (int64_t j = 0; j < d; ++j) {
      if (j == i || chunk_of[j] != chunk_of[i]) continue;
      auto sq = torch::dot(W[i], W[j]).pow(2);
      best = best.defined() ? torch::maximum(best, sq) : sq;
    }
    if (best.defined()) total = total + best;
  }
  return total / static_cast<double>(d);
}

worker::JobConfig small_job(double orthogonality) {
  worker::JobConfig cfg;
  cfg.sae.d_in = 8;
  cfg.sae.d_sae = 24;
  cfg.absorption.enabled = false;
  cfg.train.batch_size = 32;
  cfg.train.warmup_steps = 2;
  cfg.train.lr = 1e-2;
  cfg.resolved = {{"orthogonality.penalty", orthogonality}, {"orthogonality.chunk_size", 10}};
  return cfg;
}

torch::Tensor batch(int64_t step) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2000 + step);
  return torch::relu(torch::randn({32, 8}, gen));
}

struct TrainerRun {
  worker::LocalCommunicator comm;
  worker::Trainer trainer;
  explicit TrainerRun(const worker::JobConfig& cfg) : trainer(cfg, comm, torch::kCPU) { trainer.start_fresh(batch(0)); }
  void train(int64_t until) {
    while (trainer.state().step < until) trainer.step(batch(trainer.state().step));
  }
};

double term(const worker::StepStats& stats, const std::string& name) {
  return stats.terms[worker::step_term_index(name)].item<double>();
}

}  // namespace

TEST(Orthogonality, IsEachLatentsLargestSquaredCosineInItsChunkWithItsGradient) {
  for (int64_t chunk_size : {4, 10, 64}) {  // uneven chunks (10 latents: 4, 3, 3), two, and one
    auto order = sae::orthogonality_order(10, 7, 3);
    auto W = unit_rows(10, 5, 1).requires_grad_(true), W_ref = W.detach().clone().requires_grad_(true);
    auto got = sae::orthogonality_loss(W, order, chunk_size), want = brute_force_orthogonality(W_ref, order, chunk_size);
    EXPECT_NEAR(got.item<double>(), want.item<double>(), 1e-6) << "chunk " << chunk_size;
    got.backward();
    want.backward();
    EXPECT_TRUE(torch::allclose(W.grad(), W_ref.grad(), 1e-5, 1e-6)) << "chunk " << chunk_size;
  }
}

TEST(Orthogonality, ChunksArePermutationsThatFollowTheSeedAndTheStep) {
  auto a = sae::orthogonality_order(100, 1, 5);
  EXPECT_TRUE(torch::equal(std::get<0>(a.sort()), torch::arange(100)));
  EXPECT_TRUE(torch::equal(a, sae::orthogonality_order(100, 1, 5)));
  EXPECT_FALSE(torch::equal(a, sae::orthogonality_order(100, 1, 6)));
  EXPECT_FALSE(torch::equal(a, sae::orthogonality_order(100, 2, 5)));
}

TEST(Orthogonality, LowersTheDecodersLargestCosinesInTraining) {
  TrainerRun off(small_job(0.0)), on(small_job(3.0));
  off.train(150);
  on.train(150);
  auto all = torch::arange(24);  // one chunk: each latent's largest squared cosine over all latents
  auto before = sae::orthogonality_loss(off.trainer.model().W_dec.detach(), all, 24).item<double>();
  auto after = sae::orthogonality_loss(on.trainer.model().W_dec.detach(), all, 24).item<double>();
  EXPECT_LT(after, 0.8 * before) << "off " << before << ", on " << after;
  // Its activity is the unweighted loss, 0 where it is off.
  EXPECT_GT(term(on.trainer.step(batch(150)), "orthogonality"), 0.0);
  EXPECT_EQ(term(off.trainer.step(batch(150)), "orthogonality"), 0.0);
}

TEST(Orthogonality, ResumingFromACheckpointIsBitIdentical) {
  auto dir = sweep::testing::scratch() / "orthogonality_resume";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto cfg = small_job(1.0);
  TrainerRun uninterrupted(cfg), first(cfg);
  first.train(7);
  worker::save_checkpoint(dir, first.trainer.state(), json::object());
  TrainerRun second(cfg);
  ASSERT_TRUE(worker::restore_newest_checkpoint(dir, second.trainer.state()).has_value());
  uninterrupted.train(15);
  second.train(15);
  auto a = uninterrupted.trainer.state().model->parameters(), b = second.trainer.state().model->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
}

namespace {

// A penalty known only to this file: it pulls b_enc towards 0 with a weight from its own setting,
// sums every latent's firing count in the step's first all-reduce, and counts its calls in a
// state tensor that checkpoints carry.
class TestPull final : public sae::Penalty {
 public:
  explicit TestPull(double weight) : weight_(weight), calls_(torch::zeros({1})) {}
  std::unique_ptr<sae::Penalty> clone() const override { return std::make_unique<TestPull>(*this); }
  int64_t statistics_numel() const override { return 1; }
  sae::FiringNeeded firing_needed() const override { return sae::FiringNeeded::Rows; }
  torch::Tensor local_statistics(const sae::ShardFiring& firing) const override { return firing.rows.sum().reshape({1}); }
  sae::PenaltyLoss loss(const sae::Sae& sae, const torch::Tensor& fired, const torch::Tensor& section, int64_t,
                        int64_t) override {
    calls_ = calls_ + 1;  // a new tensor: a clone taken before keeps the old count
    auto pull = sae.b_enc.pow(2).sum();
    return {weight_ * pull, torch::stack({pull.detach(), section[0] - fired.sum(), calls_[0]})};
  }
  std::vector<std::pair<std::string, torch::Tensor>> tensors() const override { return {{"test_pull.calls", calls_}}; }
  void restore(const std::map<std::string, torch::Tensor>& saved, int64_t) override {
    calls_ = saved.at("test_pull.calls").clone();
  }

 private:
  double weight_;
  torch::Tensor calls_;
};

}  // namespace

TEST(Penalties, OneRegisteredInATestFileIsTrainedWithAndCheckpointed) {
  sae::register_penalty({"test_pull", "test_pull", "test_pull.weight", 0.0, {}, {"test_pull", "test_pull_firing_gap", "test_pull_calls"},
                         [](const sae::PenaltyContext& c) -> std::unique_ptr<sae::Penalty> {
                           const double weight = c.settings.value("test_pull.weight", 0.0);
                           return weight == 0.0 ? nullptr : std::make_unique<TestPull>(weight);
                         }});
  EXPECT_THROW(sae::register_penalty({"test_pull", "test_pull", "test_pull.weight", 0.0, {}, {}, nullptr}), std::invalid_argument);
  auto without = small_job(0.0), with = small_job(0.0);
  with.resolved["test_pull.weight"] = 5.0;
  TrainerRun off(without), on(with);
  // Its statistics travel in the first all-reduce, its activity in the second.
  EXPECT_EQ(on.trainer.step_collective_sizes()[0], off.trainer.step_collective_sizes()[0] + 1);
  EXPECT_EQ(on.trainer.step_collective_sizes()[1], off.trainer.step_collective_sizes()[1]);
  on.train(20);
  off.train(20);
  auto stats = on.trainer.step(batch(20));
  EXPECT_EQ(term(stats, "test_pull_firing_gap"), 0.0);  // its section is the step's firing, reduced
  EXPECT_EQ(term(stats, "test_pull_calls"), 21.0);
  EXPECT_EQ(term(off.trainer.step(batch(20)), "test_pull_calls"), 0.0);
  // Its loss reached the gradients: b_enc is pulled in.
  EXPECT_LT(on.trainer.model().b_enc.norm().item<double>(), 0.5 * off.trainer.model().b_enc.norm().item<double>());
  // Its state goes into checkpoints and comes back.
  auto dir = sweep::testing::scratch() / "test_pull_checkpoint";
  fs::remove_all(dir);
  fs::create_directories(dir);
  worker::save_checkpoint(dir, on.trainer.state(), json::object());
  TrainerRun resumed(with);
  ASSERT_TRUE(worker::restore_newest_checkpoint(dir, resumed.trainer.state()).has_value());
  EXPECT_EQ(term(resumed.trainer.step(batch(21)), "test_pull_calls"), 22.0);
}

namespace {

// An architecture known only to this file: relu whose sparsity term is its own (the square root of
// each row's L1), exported as a standard SAE, that wants an even d_sae.
class RootL1 final : public sae::Architecture {
 public:
  torch::Tensor activate(const sae::Sae&, const torch::Tensor& pre) const override { return torch::relu(pre); }
  sae::ArchLosses losses(const sae::ArchLossInputs& in) const override {
    const auto& f = in.fwd.f;  // a dense step: the default forward with train.step = "dense"
    return {sae::reconstruction_loss(in.x, in.fwd.x_hat, in.loss.recon, in.batch),
            in.loss.l1_penalty * in.batch.mean_share((f.sum(1) + 1e-6).sqrt()), {}};
  }
  void export_saelens(const sae::Sae&, sae::SaeLensExport& out) const override {
    out.cfg["architecture"] = "standard";
    out.cfg["activation_fn"] = "relu";
  }
  std::vector<SettingProblem> check(const sae::SaeConfig& cfg) const override {
    if (cfg.d_sae % 2 == 0) return {};
    return {{"sae.d_sae", "root_l1 wants an even number of latents"}};
  }
};

std::vector<launcher::PlannedJob> plan_text(const std::string& name, const std::string& text) {
  const auto file = sweep::testing::scratch() / (name + ".toml");
  std::ofstream(file) << text;
  return launcher::expand_grid(launcher::load_sweep(file, {}));
}

}  // namespace

TEST(Architectures, OneRegisteredInATestFileIsPlannedTrainedAndExported) {
  sae::register_architecture({"root_l1", {}, [] { return std::make_unique<RootL1>(); }, {"train.l1_penalty"}});
  EXPECT_THROW(sae::register_architecture({"root_l1", {}, nullptr}), std::invalid_argument);
  // Planned: its name is a known sae.arch, a grid over a setting only others read leaves it alone,
  // and its own check names the key.
  const std::string base = "[data]\nd_in = 8\nn_roots = 4\n[train]\nstep = \"dense\"\nsteps = 30\nbatch_size = 32\nlr = 1e-2\n"
                           "warmup_steps = 2\n"
                           "[sae]\narch = \"root_l1\"\n";
  auto jobs = plan_text("root_l1", base + "d_sae = 16\n[grid]\ninclude_baseline = false\n\"sae.k\" = [1, 2]\n"
                                          "\"train.l1_penalty\" = [0.01, 1.0]\n");
  ASSERT_EQ(jobs.size(), 2u) << "sae.k is not read by root_l1: one job per l1_penalty";
  try {
    plan_text("root_l1_odd", base + "d_sae = 15\n");
    ADD_FAILURE() << "an odd d_sae was accepted";
  } catch (const launcher::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sae.d_sae = 15: root_l1 wants an even number of latents"), std::string::npos)
        << e.what();
  }
  // Trained: the sparsity term is its own, and it changes what is learnt.
  std::vector<double> l0;
  for (const auto& job : jobs) {
    auto cfg = launcher::to_job_config(job);
    cfg.absorption.enabled = false;
    worker::LocalCommunicator comm;
    worker::Trainer trainer(cfg, comm, torch::kCPU);
    EXPECT_EQ(&trainer.model().architecture(), &sae::architecture("root_l1"));
    trainer.start_fresh(batch(0));
    worker::StepStats stats;
    for (int64_t s = 0; s < 30; ++s) stats = trainer.step(batch(s));
    EXPECT_GT(worker::read_step_terms(stats).sparse, 0.0);
    l0.push_back(trainer.model().encode(batch(99)).gt(0).sum(1).to(torch::kDouble).mean().item<double>());
    // Exported with its own fields.
    auto exported = sae::export_saelens(trainer.model(), torch::ones({16}), {});
    EXPECT_EQ(exported.cfg["architecture"], "standard");
    EXPECT_EQ(exported.weights.size(), 4u);
  }
  EXPECT_LT(l0[1], l0[0]) << "a larger l1_penalty on its own sparsity term gives fewer active latents";
}

// Recorded with the build before the penalties moved behind their interface (tests/data/).
TEST(Unchanged, EveryShippedSweepsJobIdsAreThoseRecordedBeforeThePenaltiesMoved) {
  const auto recorded = sweep::testing::read_json(fs::path(SWEEP_SOURCE_DIR) / "tests/data/shipped_job_ids.json");
  ASSERT_GE(recorded.size(), 8u);
  for (const auto& [file, ids] : recorded.items()) {
    std::vector<std::string> got;
    for (const auto& job : launcher::expand_grid(launcher::load_sweep(fs::path(SWEEP_SOURCE_DIR) / "sweeps" / file, {})))
      got.push_back(job.id);
    EXPECT_EQ(json(got), ids) << file;
  }
}

// Bit for bit on the machine that recorded them; a relative 1e-4 allows another CPU's BLAS kernels
// (any change to the maths moves them far more).
TEST(Unchanged, QuickTomlsMetricsAreThoseRecordedBeforeThePenaltiesMoved) {
  const auto recorded = sweep::testing::read_json(fs::path(SWEEP_SOURCE_DIR) / "tests/data/quick_metrics.json");
  auto run = sweep::testing::run_quick(0, "unchanged_quick");
  ASSERT_EQ(run.exit_code, 0) << run.log;
  for (const auto& [id, metrics] : recorded.items()) {
    const auto result = sweep::testing::read_json(sweep::testing::scratch() / "unchanged_quick" / "jobs" / id / "result.json");
    for (const auto& [key, want] : metrics.items()) {
      const auto& got = result["metrics"][key];
      if (!want.is_number()) {
        EXPECT_EQ(got, want) << id << " " << key;
        continue;
      }
      const double w = want.get<double>(), g = got.get<double>();
      EXPECT_NEAR(g, w, 1e-4 * std::max(1.0, std::abs(w))) << id << " " << key;
    }
  }
}
