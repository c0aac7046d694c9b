// Candidate pairs against the dense reference on one training trajectory (tests/pair_agreement.h):
// the share of dense's flagged pair-steps that candidates flag too, how near the ratio threshold
// the disagreements sit and what they change in L_absorb, the steps after which a pair above tau
// was missing, and how many candidates and searches it took. The job is a sweep file's
// first penalised job (sweeps/ratio.toml's unless told otherwise), with --set overrides as for
// `sweep`. Prints; asserts nothing.
#include <algorithm>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "config/config_error.h"
#include "config/grid.h"
#include "config/job_settings.h"
#include "config/sweep_file.h"
#include "tests/pair_agreement.h"
#include "worker/cpu_threads.h"
#include "worker/freed_memory.h"

using namespace sweep;

int main(int argc, char** argv) {
  CLI::App app{"sweep_bench_pairs: candidate pairs against dense, in lock-step on one run"};
  std::string file = "sweeps/ratio.toml";
  std::vector<std::string> overrides;
  app.add_option("sweep", file, "sweep file whose first penalised job to train");
  app.add_option("--set", overrides, "KEY=VALUE, as for sweep (grid.KEY=[...] sets a grid axis)");
  CLI11_PARSE(app, argc, argv);
  worker::use_cpu_threads(static_cast<int>(std::thread::hardware_concurrency()));
  worker::keep_freed_memory();

  worker::JobConfig cfg;
  try {
    const auto jobs = launcher::expand_grid(launcher::load_sweep(file, overrides));
    const auto job = std::find_if(jobs.begin(), jobs.end(), [](const auto& j) { return !j.baseline; });
    if (job == jobs.end()) throw launcher::ConfigError(file + ": no job with the penalty on");
    cfg = launcher::to_job_config(*job);
  } catch (const launcher::ConfigError& e) {
    std::fprintf(stderr, "sweep_bench_pairs: %s\n", e.what());
    return 2;
  }
  cfg.data.eval_tokens = 0;
  auto a = test::lockstep_pair_agreement(cfg, cfg.train.steps);
  const auto& p = cfg.absorption;
  std::printf("d_sae %lld, %lld steps, tau %.2f, margin %.2f (watch %.2f, %lld pairs per latent), rho %.1f, seed %llu: flagged pair-steps dense %lld, candidates %lld, "
              "both %lld (%.2f%% of dense's, %.2f%% of either's), differing with a long history %lld; steps with a pair above tau missing: %lld; searches %lld; candidates "
              "%.0f on average, %lld at most, of %lld pairs\n",
              static_cast<long long>(cfg.sae.d_sae), static_cast<long long>(a.steps), p.dot_threshold, p.candidate_margin, p.watch_margin,
              static_cast<long long>(p.watch_pairs_per_latent),
              p.ratio_threshold, static_cast<unsigned long long>(cfg.seed), static_cast<long long>(a.dense_flagged),
              static_cast<long long>(a.candidate_flagged), static_cast<long long>(a.both_flagged),
              100.0 * a.share_of_dense(), 100.0 * a.share_of_either(), static_cast<long long>(a.long_history_disagreements),
              static_cast<long long>(a.missed_steps), static_cast<long long>(a.refreshes),
              a.mean_candidates, static_cast<long long>(a.max_candidates),
              static_cast<long long>(cfg.sae.d_sae * (cfg.sae.d_sae - 1) / 2));
  std::printf("  the disagreements: dense's ratio within %.2f%% of rho at every one; L_absorb summed over the steps: dense %.4g, "
              "candidates %.4g, their per-step differences %.4g (%.2f%% of dense's)\n",
              100.0 * a.largest_ratio_gap, a.dense_penalty, a.candidate_penalty, a.penalty_difference,
              100.0 * a.penalty_difference_share());
  if (a.dense_flagged == 0) std::printf("  WARNING: dense flagged no pair, so the agreement says nothing: lower the tau or rho\n");
  return 0;
}
