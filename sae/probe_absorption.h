// The probe-based absorption metric of Chanin et al. ("A is for Absorption"), as SAEBench's
// absorption_first_letter computes it, on labelled held-out activation rows instead of prompts:
// 1. a linear probe per concept on the raw activations (sae/linear_probe.h, trained once per data);
// 2. the concept's main latents by k-sparse probing on the SAE's latents: latents ranked by how
//    much more they fire on the concept's rows than on the other labelled rows, then for k = 1 ..
//    max_k a logistic regression on the top k, kept while its F1 rises by more than f1_jump;
// 3. on every row where the concept is on and its probe agrees: the absorption fraction (the share
//    of the probe projection carried by up to max_absorbing other latents aligned with the probe
//    rather than by the main latents) and full absorption (the main latents silent and one latent
//    aligned with the probe carrying at least projection_share of it).
// Unlike SAEBench, a concept whose probe reads it poorly (held-out F1 below min_f1) is not scored:
// such a probe's direction is not the concept's, and scores against it are noise (measured on the
// synthetic data: README). The means over concepts also leave out those with few scored rows.
// The held-out rows are split in two by position: the even ones select and fit the k-sparse probes,
// the odd ones score them and the absorption. Sums cross the group through `AllReduce`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sae/linear_probe.h"

namespace sweep::sae {

// SAEBench's thresholds, as settings (probe.*).
struct ProbeAbsorptionConfig {
  int64_t max_k = 10;                // largest k of the k-sparse probes
  double f1_jump = 0.03;             // a larger k must raise the F1 by more than this to be kept
  double absorbing_cosine = 0.1;     // absorption fraction: a latent's cosine with the probe, at least
  int64_t max_absorbing = 3;         // absorption fraction: latents that may absorb together
  double full_cosine = 0.025;        // full absorption: the top latent's cosine with the probe, at least
  double projection_share = 0.4;     // share of the probe projection the absorbing latents must carry
  int64_t min_rows = 20;             // concepts with fewer scored rows stay out of the means
  double min_f1 = 0.6;               // so do concepts whose probe reads them worse than this (held-out F1)
};

struct ConceptAbsorption {
  std::string name;
  int64_t positives = 0;              // held-out rows with the concept on
  double probe_f1 = 0;                // the probe's own F1 on the held-out labelled rows
  // Empty when the fitting half had no positive or no negative, or the probe's F1 is below min_f1:
  // then the concept is not scored.
  std::vector<int64_t> main_latents;
  double sparse_f1 = 0;               // the k-sparse probe on the main latents, on the scoring half
  int64_t scored = 0;                 // scoring-half rows with the concept on and the probe agreeing
  double absorption_fraction = 0;     // means over the scored rows (NaN without any)
  double full_absorption = 0;
  bool counted = false;               // with main latents and scored >= min_rows: in the means
};

class ProbeAbsorption {
 public:
  // Sums a CPU float64 tensor over the group, in place.
  using AllReduce = std::function<void(torch::Tensor&)>;

  // W_dec [d_sae, d_in]: the SAE's decoder rows (any norm).
  ProbeAbsorption(LinearProbes probes, std::vector<std::string> names, const torch::Tensor& W_dec,
                  const ProbeAbsorptionConfig& cfg);

  // A chunk of held-out rows: x [B, d_in] raw activations, f [B, d_sae] the SAE's latents, on
  // [B, n_concepts] 0/1 labels, labelled [B] the rows in the task, fit [B] the fitting half.
  void add(const torch::Tensor& x, const torch::Tensor& f, const torch::Tensor& on, const torch::Tensor& labelled,
           const torch::Tensor& fit);
  // Collective: every rank of the group calls it, in the same order, with the same `sum`.
  std::vector<ConceptAbsorption> finish(const AllReduce& sum);

  // probe_absorption_fraction, probe_full_absorption, probe_f1, probe_split_latents (means over
  // the counted concepts, NaN without any) and probe_classes (their number).
  static std::map<std::string, double> summary(const std::vector<ConceptAbsorption>& concepts);

 private:
  // The labelled rows of one half, as their sparse codes and per-concept figures.
  struct Half {
    std::vector<int64_t> start{0};  // row r's entries are [start[r], start[r + 1])
    std::vector<int64_t> latent;
    std::vector<float> value;
    std::vector<uint8_t> on, agrees;  // [rows x n_concepts]: the label, and the probe's score > 0
    std::vector<float> projection;    // [rows x n_concepts]: <x, unit probe direction>
    int64_t rows() const { return static_cast<int64_t>(start.size()) - 1; }
  };
  void store(Half& half, const torch::Tensor& f, const torch::Tensor& on, const torch::Tensor& agrees,
             const torch::Tensor& projection);
  // [n_concepts, rows, width]: each row's values of each concept's ranked latents, a concept's rows together.
  torch::Tensor ranked_values(const Half& half, const std::vector<std::vector<int64_t>>& ranked, int64_t width) const;
  // Fits the k-sparse logistic regressions of `open` concepts on their first k ranked latents
  // (Newton's method from `w`, summed over the group); returns [open, k + 1] weights, the bias last.
  // `labels`: the fitting half's labels, concept by concept ([n_concepts x rows]).
  torch::Tensor fit_sparse_probes(const torch::Tensor& values, const std::vector<int64_t>& open, int64_t k,
                                  const std::vector<uint8_t>& labels, const torch::Tensor& fit_positives,
                                  double fit_rows, torch::Tensor w, const AllReduce& sum) const;
  // Each open concept's true positives, false positives and false negatives on the scoring half.
  torch::Tensor sparse_probe_counts(const torch::Tensor& values, const std::vector<int64_t>& open, int64_t k,
                                    const std::vector<uint8_t>& labels, const torch::Tensor& w) const;
  void score_absorption(const std::vector<std::vector<int64_t>>& main, torch::Tensor& sums) const;

  LinearProbes probes_;
  torch::Tensor directions_;  // [n_concepts, d_in] unit probe directions
  std::vector<std::string> names_;
  torch::Tensor cosine_;  // [n_concepts, d_sae]: each decoder row's cosine with each probe
  ProbeAbsorptionConfig cfg_;
  int64_t concepts_, d_sae_;
  torch::Tensor sums_;  // float64: the first pass's sums (layout in the .cpp)
  Half fit_, score_;
};

}  // namespace sweep::sae
