// Held-out evaluation of a trained SAE: reconstruction metrics, where the absorbing pairs lie
// against the penalty's thresholds, with ground truth the metrics against the true features and
// the clamping interventions, and with labels the probe-based absorption metric. Each rank scores
// a slice; sums are all-reduced.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "sae/absorption_coverage.h"
#include "sae/probe_absorption.h"
#include "sae/sae_model.h"
#include "sharding/dataset.h"
#include "worker/communicator.h"

namespace sweep::worker {

struct Evaluation {
  std::map<std::string, double> metrics;
  torch::Tensor firing_frequency;  // [d_sae] on the held-out set
  // Matched (parent, child) latent pairs (with ground truth) and the highest-cosine pairs.
  std::vector<sae::CoveragePair> coverage;
  // With labels: the probe-based absorption metric per concept, and the seconds it took.
  std::vector<sae::ConceptAbsorption> concepts;
  double probe_seconds = 0;
};

// The probe-based absorption metric's inputs: the sweep's probes (worker/probe_file.h) for the
// data's concepts, and the job's thresholds.
struct ProbeScoring {
  sae::LinearProbes probes;
  sae::ProbeAbsorptionConfig cfg;
};

// How many of the highest-cosine latent pairs the coverage measures beside the matched ones.
constexpr int64_t kCoverageTopPairs = 200;
// How many root features (the most frequent first) the clamping interventions target.
constexpr int64_t kInterventionTargets = 32;

// Collective. nullopt when the group was asked to stop (checked before every chunk, so a stop
// never waits for a long evaluation).
// `absorption`: the thresholds the coverage is judged against (the job's). `probe`: null without
// labels.
std::optional<Evaluation> evaluate(const sae::Sae& sae, const sharding::Dataset& data, Communicator& comm,
                                   int64_t eval_batch_size, torch::Device device,
                                   const sae::AbsorptionConfig& absorption, const ProbeScoring* probe,
                                   const std::function<bool()>& stop_requested);

}  // namespace sweep::worker
