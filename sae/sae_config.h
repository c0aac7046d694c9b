// Plain settings for one SAE: architecture, loss and absorption-penalty knobs.
// Filled by the launcher from the sweep file; the maths in sae/ only reads them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sweep::sae {

enum class ReconLoss { MSE, L2Norm };
enum class RatioKind { Lift, Conditional };
// Which latent pairs the penalty tracks: every pair (d_sae x d_sae matrices, the reference), or
// only the candidates whose decoder cosine can exceed tau (see sae/candidate_pairs.h).
enum class PairTracking { Dense, Candidates };
// The training step's decoder and backward pass: over every latent (dense products), over each
// row's active latents only (sparse), or sparse while a row holds few of the latents on average
// (sae/sparse_code.h: sparse_density_limit).
enum class StepMode { Auto, Dense, Sparse };
// The training step's matrix products: float32, or bfloat16 inputs with float32 results (see
// sae/products.h). Evaluation, the metrics and the exported SAE are float32 either way.
enum class MatmulDtype { Float32, BFloat16 };
// How many entries a sparse step's code holds (sae/sparse_code.h; the setting train.code_width): the
// batch's own count (reading it: free on a CPU, a synchronisation on a GPU), or planned from the
// step before with no read (entries past the plan are cut and the step computed again). Auto: the
// batch's on a CPU, planned elsewhere.
enum class CodeSizes { Auto, OfTheBatch, Planned };

struct SaeConfig {
  std::string arch = "relu";  // an architecture of sae/architecture.h's table
  int64_t d_in = 0;
  int64_t d_sae = 512;
  // topk and batchtopk (batchtopk: k latents per row on average, k x B over a batch shard)
  int64_t k = 32;
  double threshold_rate = 0.01;  // batchtopk: EMA rate of the inference threshold
  // matryoshka: the nested prefixes' widths, increasing (d_sae is the last, added when missing)
  std::vector<int64_t> matryoshka_widths;
  // matryoshka: each prefix's weight in the reconstruction loss, in the prefixes' order; empty: all 1
  std::vector<double> matryoshka_weights;
  int64_t k_aux = 0;  // 0: d_in / 2
  double aux_weight = 1.0 / 32.0;
  int64_t dead_after_tokens = 1000000;
  // jumprelu
  double bandwidth = 0.001;
  double target_l0 = 32.0;
  double sparsity_penalty = 1.0;
  double init_threshold = 0.001;
  StepMode step = StepMode::Auto;
  MatmulDtype matmul = MatmulDtype::Float32;
  CodeSizes code_sizes = CodeSizes::Auto;
};

struct LossConfig {
  ReconLoss recon = ReconLoss::MSE;
  double l1_penalty = 0.04;  // relu only
};

struct AbsorptionConfig {
  bool enabled = true;
  double penalty = 0.1;                // lambda
  double activation_threshold = 0.001;
  double dot_threshold = 0.8;          // tau
  double ratio_threshold = 5.0;        // rho
  RatioKind ratio = RatioKind::Lift;
  double ema_decay = 0.99;             // beta
  PairTracking pairs = PairTracking::Candidates;
  double candidate_margin = 0.1;       // candidates: every pair with cosine > tau - margin
  double watch_margin = 0.7;           // and pairs with cosine > tau - watch_margin, while they fit in
  int64_t watch_pairs_per_latent = 4;  // this many pairs per latent
  int64_t refresh_every = 100;         // candidates are found anew at least this often (steps)
  double max_candidate_fraction = 0.25;  // more candidates than this share of all pairs: dense
};

// Matryoshka's prefix widths, ending with d_sae.
std::vector<int64_t> matryoshka_prefixes(const SaeConfig& cfg);

}  // namespace sweep::sae
