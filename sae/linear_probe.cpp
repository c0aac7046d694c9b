// One-vs-rest logistic regression for every concept at once: a [n_concepts, d_in] linear layer
// under a binary cross-entropy per concept.
#include "sae/linear_probe.h"

#include <cmath>

namespace sweep::sae {

LinearProbes train_linear_probes(const torch::Tensor& x_raw, const torch::Tensor& on_in, const ProbeTraining& t) {
  const int64_t n = x_raw.size(0), d_in = x_raw.size(1), concepts = on_in.size(1);
  auto x_cpu = x_raw.to(torch::kCPU, torch::kFloat);
  const double scale = std::max(std::sqrt(x_cpu.pow(2).mean().item<double>()), 1e-12);
  auto x = x_cpu / scale;
  auto on = on_in.to(torch::kCPU, torch::kFloat);
  auto positives = on.sum(0);
  auto pos_weight = ((static_cast<double>(n) - positives) / positives.clamp_min(1.0)).clamp_min(1e-6);

  auto weight = torch::zeros({concepts, d_in}, torch::kFloat).requires_grad_(true);
  auto bias = torch::zeros({concepts}, torch::kFloat).requires_grad_(true);
  torch::optim::Adam adam({weight, bias}, torch::optim::AdamOptions(t.lr).weight_decay(t.weight_decay));
  const double gamma = std::pow(t.end_lr / t.lr, 1.0 / static_cast<double>(std::max<int64_t>(1, t.epochs)));
  auto generator = at::make_generator<at::CPUGeneratorImpl>(t.seed);
  double lr = t.lr;
  for (int64_t epoch = 0; epoch < t.epochs; ++epoch) {
    for (auto& group : adam.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    auto order = torch::randperm(n, generator, torch::kLong);
    for (int64_t first = 0; first < n; first += t.batch_size) {
      auto rows = order.narrow(0, first, std::min(t.batch_size, n - first));
      auto logits = torch::addmm(bias, x.index_select(0, rows), weight.t());
      auto loss = torch::binary_cross_entropy_with_logits(logits, on.index_select(0, rows), {}, pos_weight);
      adam.zero_grad();
      loss.backward();
      adam.step();
    }
    lr *= gamma;
  }
  torch::NoGradGuard no_grad;
  return {weight.detach() / scale, bias.detach().clone()};
}

}  // namespace sweep::sae
