// Reconstruction metrics from streamed sums: explained variance is about the mean of the
// held-out set (not about zero); the per-token ratios cossim and l2_ratio are averaged over the
// rows with x != 0, on which they are defined.
#include "sae/metrics.h"

namespace sweep::sae {
namespace {
// Layout of the flat sums buffer.
enum Slot : int64_t { kRows, kNonzeroRows, kSquaredError, kSquaredNorm, kCosine, kNormRatio, kL0, kL1, kScalars };
}  // namespace

ReconstructionMetrics::ReconstructionMetrics(int64_t d_in, int64_t d_sae)
    : d_in_(d_in), d_sae_(d_sae), sums_(torch::zeros({kScalars + d_in + d_sae}, torch::kDouble)) {}

void ReconstructionMetrics::add(const torch::Tensor& x_in, const Forward& fwd) {
  torch::NoGradGuard no_grad;
  auto x = x_in.to(torch::kCPU, torch::kDouble);
  auto x_hat = fwd.x_hat.to(torch::kCPU, torch::kDouble);
  auto f = fwd.f.to(torch::kCPU, torch::kDouble);
  auto x_norm = x.norm(2, 1);
  auto x_hat_norm = x_hat.norm(2, 1);
  auto nonzero = x_norm > 0;
  auto cosine = (x * x_hat).sum(1) / (x_norm * x_hat_norm).clamp_min(1e-300);
  auto norm_ratio = x_hat_norm / x_norm.clamp_min(1e-300);
  auto scalars = torch::stack({
      torch::scalar_tensor(static_cast<double>(x.size(0)), torch::kDouble),
      nonzero.sum().to(torch::kDouble),
      (x - x_hat).pow(2).sum(),
      x.pow(2).sum(),
      cosine.masked_select(nonzero).sum(),
      norm_ratio.masked_select(nonzero).sum(),
      (f > 0).sum().to(torch::kDouble),
      f.abs().sum(),
  });
  sums_.narrow(0, 0, kScalars).add_(scalars);
  sums_.narrow(0, kScalars, d_in_).add_(x.sum(0));
  sums_.narrow(0, kScalars + d_in_, d_sae_).add_((f > 0).sum(0).to(torch::kDouble));
}

torch::Tensor ReconstructionMetrics::firing_frequency() const {
  double rows = std::max(1.0, sums_[kRows].item<double>());
  return sums_.narrow(0, kScalars + d_in_, d_sae_) / rows;
}

std::map<std::string, double> ReconstructionMetrics::result() const {
  auto s = sums_.narrow(0, 0, kScalars);
  double rows = s[kRows].item<double>();
  double n = std::max(1.0, rows), nonzero = std::max(1.0, s[kNonzeroRows].item<double>());
  auto mean_x = sums_.narrow(0, kScalars, d_in_) / n;
  double total_variance = s[kSquaredNorm].item<double>() - n * mean_x.pow(2).sum().item<double>();
  double sse = s[kSquaredError].item<double>();
  auto freq = firing_frequency();
  return {
      {"eval_tokens", rows},
      {"mse", sse / (n * static_cast<double>(d_in_))},
      {"explained_variance", 1.0 - sse / std::max(total_variance, 1e-30)},
      {"cossim", s[kCosine].item<double>() / nonzero},
      {"l2_ratio", s[kNormRatio].item<double>() / nonzero},
      {"l0", s[kL0].item<double>() / n},
      {"l1", s[kL1].item<double>() / n},
      {"dead_fraction", (freq == 0).to(torch::kDouble).mean().item<double>()},
      {"dense_fraction", (freq > 0.1).to(torch::kDouble).mean().item<double>()},
  };
}

}  // namespace sweep::sae
