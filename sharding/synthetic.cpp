// Synthetic feature forest: builds directions and the hierarchy from the seed, then samples
// each row from its own counter-based random stream (deterministic by row index).
#include "sharding/synthetic.h"

#include <cmath>

#include "sharding/counter_rng.h"
#include "sharding/spread_directions.h"

namespace sweep::sharding {
namespace {
constexpr uint64_t kStructureStream = 1;  // directions and hierarchy
constexpr uint64_t kRowStream = 2;        // per-row sampling
}  // namespace

SyntheticSource::SyntheticSource(const SyntheticConfig& cfg) : cfg_(cfg) {
  // Breadth-first forest: roots first, then each level's children.
  std::vector<int64_t> level;
  for (int64_t r = 0; r < cfg.n_roots; ++r) {
    roots_.push_back(r);
    level.push_back(r);
    parents_.push_back(-1);
  }
  for (int64_t d = 1; d < cfg.depth; ++d) {
    std::vector<int64_t> next;
    for (int64_t p : level) {
      for (int64_t b = 0; b < cfg.branching; ++b) {
        next.push_back(static_cast<int64_t>(parents_.size()));
        parents_.push_back(p);
      }
    }
    level = std::move(next);
  }
  children_.resize(parents_.size());
  for (size_t c = 0; c < parents_.size(); ++c) {
    if (parents_[c] >= 0) children_[parents_[c]].push_back(static_cast<int64_t>(c));
  }
  // Zipf-like root probabilities: p_r = p_max * (r + 1)^-s with s chosen so the last is p_min.
  double s = cfg.n_roots > 1 ? std::log(cfg.p_max / cfg.p_min) / std::log(static_cast<double>(cfg.n_roots)) : 0.0;
  for (int64_t r = 0; r < cfg.n_roots; ++r) root_prob_.push_back(cfg.p_max * std::pow(r + 1.0, -s));
  // Random unit directions.
  CounterRng rng(cfg.seed, kStructureStream, 0);
  auto dirs = torch::empty({n_features(), cfg.d_in}, torch::kFloat);
  auto* d = dirs.data_ptr<float>();
  for (int64_t i = 0; i < dirs.numel(); ++i) d[i] = static_cast<float>(rng.normal());
  dirs = (dirs / dirs.norm(2, 1, true)).contiguous();
  spread_directions(dirs.data_ptr<float>(), n_features(), cfg.d_in, cfg.orthogonalize_steps);
  // Children lean towards their parent: exactly child_cosine with it (parents are built first).
  double c = cfg.child_cosine;
  for (int64_t i = 0; i < n_features(); ++i) {
    if (parents_[i] < 0 || c == 0.0) continue;
    auto parent = dirs[parents_[i]];
    auto orthogonal = dirs[i] - (dirs[i] * parent).sum() * parent;
    dirs[i].copy_(c * parent + std::sqrt(1.0 - c * c) * orthogonal / orthogonal.norm());
  }
  directions_ = dirs.contiguous();
  // Unit loadings of the roots on the shared factors of the correlated firing.
  const int64_t rank = cfg.correlation_rank;
  for (int64_t r = 0; r < cfg.n_roots * rank; ++r) loadings_.push_back(rng.normal());
  for (int64_t r = 0; r < cfg.n_roots && rank > 0; ++r) {
    double norm = 0;
    for (int64_t q = 0; q < rank; ++q) norm += loadings_[r * rank + q] * loadings_[r * rank + q];
    for (int64_t q = 0; q < rank; ++q) loadings_[r * rank + q] /= std::sqrt(norm);
  }
}

std::vector<double> SyntheticSource::firing_probability() const {
  std::vector<double> p(parents_.size(), 0.0);
  for (size_t i = 0; i < parents_.size(); ++i) {
    if (parents_[i] < 0) {
      p[i] = root_prob_[i];
    } else {
      double given_parent = cfg_.exclusive_children
                                ? cfg_.child_prob / static_cast<double>(children_[parents_[i]].size())
                                : cfg_.child_prob;
      p[i] = p[parents_[i]] * given_parent;  // parents precede children (breadth-first order)
    }
  }
  return p;
}

void SyntheticSource::sample_row(int64_t row, float* acts) const {
  CounterRng rng(cfg_.seed, kRowStream, static_cast<uint64_t>(row));
  auto magnitude = [&] { return static_cast<float>(std::abs(cfg_.magnitude_mean + cfg_.magnitude_std * rng.normal())); };
  std::vector<int64_t> firing;
  const int64_t rank = cfg_.correlation_rank;
  if (rank == 0) {
    for (int64_t r : roots_) {
      if (rng.uniform() < root_prob_[r]) firing.push_back(r);
    }
  } else {
    std::vector<double> shared(static_cast<size_t>(rank));
    for (double& g : shared) g = rng.normal();
    const double c = cfg_.correlation_strength;
    for (int64_t r : roots_) {
      double common = 0;
      for (int64_t q = 0; q < rank; ++q) common += loadings_[r * rank + q] * shared[q];
      const double z = std::sqrt(c) * common + std::sqrt(1.0 - c) * rng.normal();
      if (0.5 * std::erfc(-z / std::sqrt(2.0)) < root_prob_[r]) firing.push_back(r);
    }
  }
  // Walk down from every firing feature; firing grows as children fire.
  for (size_t i = 0; i < firing.size(); ++i) {
    int64_t f = firing[i];
    acts[f] = magnitude();
    const auto& kids = children_[f];
    if (kids.empty()) continue;
    if (cfg_.exclusive_children) {
      if (rng.uniform() < cfg_.child_prob) {
        firing.push_back(kids[static_cast<size_t>(rng.uniform() * static_cast<double>(kids.size()))]);
      }
    } else {
      for (int64_t c : kids) {
        if (rng.uniform() < cfg_.child_prob) firing.push_back(c);
      }
    }
  }
}

SyntheticRows SyntheticSource::rows(int64_t first, int64_t count) const {
  SyntheticRows out;
  const int64_t n = n_features(), d = cfg_.d_in;
  out.feature_acts = torch::zeros({count, n}, torch::kFloat);
  out.activations = torch::zeros({count, d}, torch::kFloat);
  auto* acts = out.feature_acts.data_ptr<float>();
  auto* x = out.activations.data_ptr<float>();
  const float* dirs = directions_.data_ptr<float>();
  for (int64_t r = 0; r < count; ++r) {
    float* a = acts + r * n;
    float* xr = x + r * d;
    sample_row(first + r, a);
    // Each row is summed on its own in feature order (no batched matmul, whose rounding depends
    // on the batch shape), so a row's bits never depend on which batch or rank produced it.
    for (int64_t i = 0; i < n; ++i) {
      if (a[i] == 0.0f) continue;
      for (int64_t j = 0; j < d; ++j) xr[j] += a[i] * dirs[i * d + j];
    }
    if (cfg_.noise_std > 0) {
      CounterRng noise(cfg_.seed, kRowStream + 1, static_cast<uint64_t>(first + r));
      for (int64_t j = 0; j < d; ++j) xr[j] += static_cast<float>(cfg_.noise_std * noise.normal());
    }
  }
  return out;
}

}  // namespace sweep::sharding
