// Candidate pairs against the dense reference on one training trajectory (tests/pair_agreement.h):
// the share of dense's flagged pair-steps that candidates flag too, the steps after which a pair
// above tau was missing, and how many candidates and searches it took. Prints; asserts nothing.
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "tests/pair_agreement.h"
#include "worker/cpu_threads.h"

using namespace sweep;

int main(int argc, char** argv) {
  CLI::App app{"sweep_bench_pairs: candidate pairs against dense, in lock-step on one run"};
  // sweeps/ratio.toml's settings unless told otherwise: relu on the embedded synthetic data.
  int64_t d_sae = 320, steps = 2000, batch = 1024, warmup = 200;
  double tau = 0.8, rho = 5.0, l1 = 0.6, lr = 4e-3, margin = worker::JobConfig{}.absorption.candidate_margin;
  uint64_t seed = 42;
  app.add_option("--d-sae", d_sae);
  app.add_option("--steps", steps);
  app.add_option("--batch", batch);
  app.add_option("--tau", tau, "absorption.dot_threshold");
  app.add_option("--rho", rho, "absorption.ratio_threshold");
  app.add_option("--margin", margin, "absorption.candidate_margin");
  app.add_option("--l1", l1, "train.l1_penalty");
  app.add_option("--lr", lr, "train.lr");
  app.add_option("--warmup", warmup, "train.warmup_steps");
  app.add_option("--seed", seed);
  CLI11_PARSE(app, argc, argv);
  worker::use_cpu_threads(static_cast<int>(std::thread::hardware_concurrency()));

  worker::JobConfig cfg;
  cfg.seed = seed;
  cfg.sae.d_sae = d_sae;
  cfg.train.batch_size = batch;
  cfg.train.lr = lr;
  cfg.train.warmup_steps = warmup;
  cfg.loss.l1_penalty = l1;
  cfg.data.eval_tokens = 0;
  cfg.absorption.enabled = true;
  cfg.absorption.dot_threshold = tau;
  cfg.absorption.ratio_threshold = rho;
  cfg.absorption.candidate_margin = margin;
  auto a = test::lockstep_pair_agreement(cfg, steps);
  std::printf("d_sae %lld, %lld steps, tau %.2f, margin %.2f, rho %.1f, seed %llu: flagged pair-steps dense %lld, candidates %lld, "
              "both %lld (%.2f%% of dense), differing with a long history %lld; steps with a pair above tau missing: %lld; searches %lld; candidates "
              "%.0f on average, %lld at most, of %lld pairs\n",
              static_cast<long long>(d_sae), static_cast<long long>(a.steps), tau, margin, rho,
              static_cast<unsigned long long>(seed), static_cast<long long>(a.dense_flagged),
              static_cast<long long>(a.candidate_flagged), static_cast<long long>(a.both_flagged),
              100.0 * a.share_of_dense(), static_cast<long long>(a.long_history_disagreements),
              static_cast<long long>(a.missed_steps), static_cast<long long>(a.refreshes),
              a.mean_candidates, static_cast<long long>(a.max_candidates),
              static_cast<long long>(d_sae * (d_sae - 1) / 2));
  if (a.dense_flagged == 0) std::printf("  WARNING: dense flagged no pair, so the agreement says nothing: lower --tau or --rho\n");
  return 0;
}
