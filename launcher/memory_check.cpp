// Memory estimates per rank: the SAE with its gradients and Adam moments, one step's activations,
// one evaluation chunk, the synthetic source's feature directions and per-row feature activations,
// and the dense penalty's matrices where they are asked for.
#include "launcher/memory_check.h"

#include <algorithm>
#include <cmath>

#include "common/byte_size.h"
#include "config/config_error.h"
#include "config/job_settings.h"

namespace sweep::launcher {
namespace {

constexpr double kFloat = 4.0;

}  // namespace

std::vector<MemoryPart> job_memory(const PlannedJob& job, int64_t d_in_value) {
  const auto cfg = to_job_config(job);
  const auto& c = job.resolved;
  const double d_in = static_cast<double>(d_in_value), d_sae = static_cast<double>(cfg.sae.d_sae);
  const double ranks = c["train.ranks_per_job"].get<double>();
  const double batch = static_cast<double>(cfg.train.batch_size) / ranks;
  const double eval = static_cast<double>(std::min(cfg.train.eval_batch_size, cfg.data.eval_tokens)) / ranks;
  std::vector<MemoryPart> parts;
  if (c["train.device"] != "cuda") {
    parts.push_back({"the SAE with gradients and Adam moments (sae.d_sae x d_in)", 4.0 * kFloat * (2.0 * d_sae * d_in + d_sae + d_in)});
    parts.push_back({"one step's activations (train.batch_size x (d_in + sae.d_sae))", kFloat * batch * (3.0 * d_in + 4.0 * d_sae)});
    parts.push_back({"one evaluation chunk (train.eval_batch_size x (d_in + sae.d_sae))", kFloat * eval * (3.0 * d_in + 3.0 * d_sae)});
    if (cfg.data.normalize == sharding::DataConfig::Normalize::ExpectedNorm) {  // sae/fold_scale.h
      parts.push_back({"the SAE's copy with data.normalize's factor folded in, for evaluation and export (sae.d_sae x d_in)",
                       kFloat * (2.0 * d_sae * d_in + d_sae + d_in)});
    }
    if (cfg.absorption.enabled && cfg.absorption.pairs == sae::PairTracking::Dense) {
      parts.push_back({"the dense penalty's sae.d_sae x sae.d_sae matrices", absorption_matrix_bytes(cfg.sae.d_sae)});
    }
  }
  if (c["data.source"] == "synthetic") {
    const double features = synthetic_feature_count(c);
    parts.push_back({"the synthetic features' directions (data.n_roots, data.branching, data.depth x data.d_in)", kFloat * features * d_in});
    parts.push_back({"the synthetic rows' feature activations (rows x features, from train.batch_size or "
                     "train.eval_batch_size and data.n_roots, data.branching, data.depth)",
                     2.0 * kFloat * std::max(batch, eval) * features});
    parts.push_back({"the ground-truth metrics' true features x sae.d_sae decoder cosines (data.n_roots, "
                     "data.branching, data.depth x sae.d_sae)",
                     3.0 * kFloat * features * d_sae});
  }
  return parts;
}

void check_memory(const PlannedJob& job, int64_t d_in, int ranks_here, double memory_bytes, const std::string& where) {
  const auto parts = job_memory(job, d_in);
  double total = 0;
  for (const auto& part : parts) total += part.bytes;
  const double need = total * ranks_here;
  if (parts.empty() || (std::isfinite(need) && need <= 0.9 * memory_bytes)) return;
  const auto largest = *std::max_element(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
  throw ConfigError(where + ": job " + job.id + (job.params.empty() ? "" : " " + job.params.dump()) + " needs about " +
                    byte_size(need) + " of memory" + (ranks_here > 1 ? " for its " + std::to_string(ranks_here) + " ranks on this machine" : "") +
                    ", more than the " + byte_size(memory_bytes) + " this machine has available now allows; the largest part is " +
                    byte_size(largest.bytes * ranks_here) + " for " + largest.what + ": lower those settings");
}

}  // namespace sweep::launcher
