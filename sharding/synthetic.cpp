// Synthetic feature forest: builds directions and the hierarchy from the seed, then samples
// each row from its own counter-based random stream (deterministic by row index).
#include "sharding/synthetic.h"

#include <cmath>

#include "sharding/counter_rng.h"

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
  directions_ = dirs / dirs.norm(2, 1, true);
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
  for (int64_t r : roots_) {
    if (rng.uniform() < root_prob_[r]) firing.push_back(r);
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
  out.feature_acts = torch::zeros({count, n_features()}, torch::kFloat);
  auto* acts = out.feature_acts.data_ptr<float>();
  for (int64_t r = 0; r < count; ++r) sample_row(first + r, acts + r * n_features());
  out.activations = out.feature_acts.mm(directions_);
  if (cfg_.noise_std > 0) {
    auto* x = out.activations.data_ptr<float>();
    for (int64_t r = 0; r < count; ++r) {
      CounterRng noise(cfg_.seed, kRowStream + 1, static_cast<uint64_t>(first + r));
      for (int64_t j = 0; j < cfg_.d_in; ++j) x[r * cfg_.d_in + j] += static_cast<float>(cfg_.noise_std * noise.normal());
    }
  }
  return out;
}

}  // namespace sweep::sharding
