// The probe-based absorption metric: one pass over the held-out rows that keeps the labelled rows'
// sparse codes, then k-sparse probing and the absorption scores on what was kept.
#include "sae/probe_absorption.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/Parallel.h>

namespace sweep::sae {
namespace {

// L2 weight of the k-sparse logistic regressions, on the summed (not averaged) loss, and the most
// Newton steps they take: scikit-learn's LogisticRegression defaults (C = 1), which SAEBench uses.
constexpr double kSparseProbeL2 = 1.0;
constexpr int kMaxNewtonSteps = 50;
constexpr double kNewtonTolerance = 1e-10;  // relative to the largest weight
// A latent with at most this activation counts as silent (SAEBench's EPS).
constexpr double kSilent = 1e-8;

double f1_score(double tp, double fp, double fn) { return tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 0.0; }

double nan() { return std::numeric_limits<double>::quiet_NaN(); }

// [rows x n_concepts] row-major bytes as [n_concepts x rows]: a concept's rows next to each other.
std::vector<uint8_t> concept_major(const std::vector<uint8_t>& by_row, int64_t rows) {
  const int64_t concepts = rows > 0 ? static_cast<int64_t>(by_row.size()) / rows : 0;
  std::vector<uint8_t> out(by_row.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < concepts; ++c) out[static_cast<size_t>(c * rows + r)] = by_row[static_cast<size_t>(r * concepts + c)];
  }
  return out;
}

// The first pass's sums, in this order: for the fitting half, each concept's sum of every latent
// over its positive rows [n_concepts x d_sae], every latent's sum over all rows [d_sae], the
// positives per concept and the rows; over all labelled rows, the probe's true positives, false
// positives and false negatives per concept.
struct Layout {
  int64_t concepts, d_sae;
  int64_t positive_sums() const { return 0; }
  int64_t totals() const { return concepts * d_sae; }
  int64_t positives() const { return totals() + d_sae; }
  int64_t rows() const { return positives() + concepts; }
  int64_t probe_counts() const { return rows() + 1; }  // tp, fp, fn: [3 x n_concepts]
  int64_t size() const { return probe_counts() + 3 * concepts; }
};

}  // namespace

ProbeAbsorption::ProbeAbsorption(LinearProbes probes, std::vector<std::string> names, const torch::Tensor& W_dec,
                                 const ProbeAbsorptionConfig& cfg)
    : probes_{probes.weight.to(torch::kCPU, torch::kFloat), probes.bias.to(torch::kCPU, torch::kFloat)},
      directions_(probes_.directions()),
      names_(std::move(names)),
      cfg_(cfg),
      concepts_(probes_.weight.size(0)),
      d_sae_(W_dec.size(0)) {
  torch::NoGradGuard no_grad;
  auto decoder = W_dec.detach().to(torch::kCPU, torch::kFloat);
  cosine_ = directions_.mm((decoder / decoder.norm(2, 1, true).clamp_min(1e-12)).t()).contiguous();
  sums_ = torch::zeros({Layout{concepts_, d_sae_}.size()}, torch::kDouble);
}

void ProbeAbsorption::store(Half& half, const torch::Tensor& f, const torch::Tensor& on, const torch::Tensor& agrees,
                            const torch::Tensor& projection) {
  auto entries = (f > 0).nonzero();  // row-major: each row's latents in increasing order
  auto values = f.index({entries.select(1, 0), entries.select(1, 1)}).contiguous();
  auto rows = entries.select(1, 0).contiguous(), latents = entries.select(1, 1).contiguous();
  const int64_t n = f.size(0), count = entries.size(0);
  const int64_t* row = rows.data_ptr<int64_t>();
  const int64_t base = half.latent.size();
  half.latent.insert(half.latent.end(), latents.data_ptr<int64_t>(), latents.data_ptr<int64_t>() + count);
  half.value.insert(half.value.end(), values.data_ptr<float>(), values.data_ptr<float>() + count);
  for (int64_t r = 0, k = 0; r < n; ++r) {
    while (k < count && row[k] == r) ++k;
    half.start.push_back(base + k);
  }
  auto on_bytes = on.to(torch::kUInt8).contiguous(), agree_bytes = agrees.to(torch::kUInt8).contiguous();
  auto proj = projection.contiguous();
  half.on.insert(half.on.end(), on_bytes.data_ptr<uint8_t>(), on_bytes.data_ptr<uint8_t>() + on_bytes.numel());
  half.agrees.insert(half.agrees.end(), agree_bytes.data_ptr<uint8_t>(), agree_bytes.data_ptr<uint8_t>() + agree_bytes.numel());
  half.projection.insert(half.projection.end(), proj.data_ptr<float>(), proj.data_ptr<float>() + proj.numel());
}

void ProbeAbsorption::add(const torch::Tensor& x, const torch::Tensor& f, const torch::Tensor& on,
                          const torch::Tensor& labelled, const torch::Tensor& fit) {
  torch::NoGradGuard no_grad;
  auto keep = labelled.to(torch::kCPU).nonzero().squeeze(1);
  if (keep.numel() == 0) return;
  auto xs = x.to(torch::kCPU, torch::kFloat).index_select(0, keep);
  auto fs = f.detach().to(torch::kCPU, torch::kFloat).index_select(0, keep);
  auto labels = on.to(torch::kCPU, torch::kFloat).index_select(0, keep);
  auto fitting = fit.to(torch::kCPU).index_select(0, keep);
  auto positive = labels > 0;
  auto agrees = probes_.scores(xs) > 0;
  auto projection = xs.mm(directions_.t());
  const Layout at{concepts_, d_sae_};
  auto counts = torch::stack({(agrees & positive).sum(0), (agrees & ~positive).sum(0), (~agrees & positive).sum(0)});
  sums_.narrow(0, at.probe_counts(), 3 * concepts_).add_(counts.flatten().to(torch::kDouble));
  for (bool fitting_half : {true, false}) {
    auto rows = (fitting_half ? fitting : ~fitting).nonzero().squeeze(1);
    if (rows.numel() == 0) continue;
    auto rf = fs.index_select(0, rows), rl = labels.index_select(0, rows);
    if (fitting_half) {
      sums_.narrow(0, at.positive_sums(), concepts_ * d_sae_).add_(rl.t().mm(rf).flatten().to(torch::kDouble));
      sums_.narrow(0, at.totals(), d_sae_).add_(rf.sum(0).to(torch::kDouble));
      sums_.narrow(0, at.positives(), concepts_).add_(rl.sum(0).to(torch::kDouble));
      sums_[at.rows()] += static_cast<double>(rows.numel());
    }
    store(fitting_half ? fit_ : score_, rf, rl, agrees.index_select(0, rows), projection.index_select(0, rows));
  }
}

torch::Tensor ProbeAbsorption::ranked_values(const Half& half, const std::vector<std::vector<int64_t>>& ranked,
                                             int64_t width) const {
  std::vector<std::vector<std::pair<int64_t, int64_t>>> slots(static_cast<size_t>(d_sae_));  // latent -> (concept, rank)
  for (int64_t c = 0; c < concepts_; ++c) {
    const auto& latents = ranked[static_cast<size_t>(c)];
    for (int64_t j = 0; j < static_cast<int64_t>(latents.size()) && j < width; ++j) {
      slots[static_cast<size_t>(latents[static_cast<size_t>(j)])].push_back({c, j});
    }
  }
  const int64_t rows = half.rows();
  auto out = torch::zeros({concepts_, rows, width}, torch::kFloat);
  float* z = out.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t e = half.start[static_cast<size_t>(r)]; e < half.start[static_cast<size_t>(r) + 1]; ++e) {
      for (const auto& [c, j] : slots[static_cast<size_t>(half.latent[static_cast<size_t>(e)])]) {
        z[(c * rows + r) * width + j] = half.value[static_cast<size_t>(e)];
      }
    }
  }
  return out;
}

torch::Tensor ProbeAbsorption::fit_sparse_probes(const torch::Tensor& values, const std::vector<int64_t>& open,
                                                 int64_t k, const std::vector<uint8_t>& labels,
                                                 const torch::Tensor& fit_positives, double fit_rows, torch::Tensor w,
                                                 const AllReduce& sum) const {
  const int64_t n_open = static_cast<int64_t>(open.size()), width = k + 1, rows = values.size(1),
                stride = values.size(2), moments_per_concept = width + width * width;
  const float* z = values.data_ptr<float>();
  const auto positives_of = fit_positives.contiguous();
  const double* positives_per_concept = positives_of.data_ptr<double>();
  auto ridge = torch::eye(width, torch::kDouble) * kSparseProbeL2;
  ridge[k][k] = 1e-12;  // the bias is not penalised
  for (int step = 0; step < kMaxNewtonSteps; ++step) {
    // Each concept's gradient and Hessian of the class-weighted log loss, summed row by row in
    // float64 (one concept per task: the same sums with any thread count).
    auto moments = torch::zeros({n_open, moments_per_concept}, torch::kDouble);
    const double* weights = w.data_ptr<double>();
    double* out = moments.data_ptr<double>();
    at::parallel_for(0, n_open, 1, [&](int64_t first, int64_t last) {
      std::vector<double> x(static_cast<size_t>(width));
      for (int64_t i = first; i < last; ++i) {
        const int64_t c = open[static_cast<size_t>(i)];
        // Balanced classes, as scikit-learn's class_weight="balanced": n / (2 n_positive), n / (2 n_negative).
        const double positives = positives_per_concept[c];
        const double on_weight = fit_rows / (2 * positives), off_weight = fit_rows / (2 * (fit_rows - positives));
        const double* wi = weights + i * width;
        double* g = out + i * moments_per_concept;
        double* h = g + width;
        for (int64_t r = 0; r < rows; ++r) {
          const float* zr = z + (c * rows + r) * stride;
          double logit = wi[k];
          for (int64_t j = 0; j < k; ++j) logit += wi[j] * (x[static_cast<size_t>(j)] = zr[j]);
          x[static_cast<size_t>(k)] = 1.0;
          const bool y = labels[static_cast<size_t>(c * rows + r)] != 0;
          const double p = 1.0 / (1.0 + std::exp(-logit)), s = y ? on_weight : off_weight;
          const double residual = s * (p - (y ? 1.0 : 0.0)), curvature = s * p * (1 - p);
          for (int64_t j = 0; j < width; ++j) {
            g[j] += residual * x[static_cast<size_t>(j)];
            for (int64_t l = j; l < width; ++l) h[j * width + l] += curvature * x[static_cast<size_t>(j)] * x[static_cast<size_t>(l)];
          }
        }
        for (int64_t j = 0; j < width; ++j) {
          for (int64_t l = 0; l < j; ++l) h[j * width + l] = h[l * width + j];
        }
      }
    });
    sum(moments);
    auto g = moments.narrow(1, 0, width) + w.mm(ridge);
    auto h = moments.narrow(1, width, width * width).view({n_open, width, width}) + ridge;
    auto delta = torch::linalg_solve(h, g.unsqueeze(2)).squeeze(2);
    w -= delta;
    // The same decision on every rank: the sums are the same.
    if (delta.abs().max().item<double>() < kNewtonTolerance * (1.0 + w.abs().max().item<double>())) break;
  }
  return w;
}

// Each open concept's true positives, false positives and false negatives of its k-sparse probe
// `w` on the scoring half.
torch::Tensor ProbeAbsorption::sparse_probe_counts(const torch::Tensor& values, const std::vector<int64_t>& open,
                                                   int64_t k, const std::vector<uint8_t>& labels,
                                                   const torch::Tensor& w) const {
  const int64_t n_open = static_cast<int64_t>(open.size()), rows = values.size(1), stride = values.size(2);
  const float* z = values.data_ptr<float>();
  auto counts = torch::zeros({n_open, 3}, torch::kDouble);
  auto weights = w.accessor<double, 2>();
  auto out = counts.accessor<double, 2>();
  for (int64_t i = 0; i < n_open; ++i) {
    const int64_t c = open[static_cast<size_t>(i)];
    for (int64_t r = 0; r < rows; ++r) {
      const float* zr = z + (c * rows + r) * stride;
      double logit = weights[i][k];
      for (int64_t j = 0; j < k; ++j) logit += weights[i][j] * zr[j];
      const bool predicted = logit > 0, actual = labels[static_cast<size_t>(c * rows + r)] != 0;
      out[i][0] += predicted && actual;
      out[i][1] += predicted && !actual;
      out[i][2] += !predicted && actual;
    }
  }
  return counts;
}

void ProbeAbsorption::score_absorption(const std::vector<std::vector<int64_t>>& main, torch::Tensor& sums) const {
  auto cosine = cosine_.accessor<float, 2>();
  auto out = sums.accessor<double, 2>();  // [n_concepts, 3]: fraction sum, full absorptions, rows
  std::vector<double> absorbing;
  for (int64_t r = 0; r < score_.rows(); ++r) {
    const int64_t begin = score_.start[static_cast<size_t>(r)], end = score_.start[static_cast<size_t>(r) + 1];
    for (int64_t c = 0; c < concepts_; ++c) {
      const size_t at = static_cast<size_t>(r * concepts_ + c);
      const auto& mains = main[static_cast<size_t>(c)];
      if (!score_.on[at] || !score_.agrees[at] || mains.empty()) continue;
      const double probe_projection = score_.projection[at];
      double main_projection = 0, top_projection = 0, top_cosine = 0;
      bool main_fires = false;
      absorbing.clear();
      for (int64_t e = begin; e < end; ++e) {
        const int64_t latent = score_.latent[static_cast<size_t>(e)];
        const double a = score_.value[static_cast<size_t>(e)], cos = cosine[c][latent], projection = a * cos;
        if (projection > top_projection) top_projection = projection, top_cosine = cos;
        if (std::find(mains.begin(), mains.end(), latent) != mains.end()) {
          main_projection += projection;
          main_fires = main_fires || std::abs(a) >= kSilent;
        } else if (cos >= cfg_.absorbing_cosine && projection > 0) {
          absorbing.push_back(projection);
        }
      }
      const size_t top = std::min(absorbing.size(), static_cast<size_t>(cfg_.max_absorbing));
      std::partial_sort(absorbing.begin(), absorbing.begin() + static_cast<long>(top), absorbing.end(), std::greater<>());
      double absorbed = 0;
      for (size_t i = 0; i < top; ++i) absorbed += absorbing[i];
      double fraction = 0;
      if (probe_projection > 0 && main_projection < probe_projection &&
          absorbed / probe_projection >= cfg_.projection_share) {
        if (main_projection <= 0) {
          fraction = 1;
        } else {
          const double share = std::min(absorbed, probe_projection - main_projection);
          fraction = std::clamp(share / (share + main_projection), 0.0, 1.0);
        }
      }
      const bool full = !main_fires && probe_projection > 0 && top_cosine >= cfg_.full_cosine &&
                        top_projection / probe_projection >= cfg_.projection_share;
      out[c][0] += fraction;
      out[c][1] += full ? 1 : 0;
      out[c][2] += 1;
    }
  }
}

std::vector<ConceptAbsorption> ProbeAbsorption::finish(const AllReduce& sum) {
  torch::NoGradGuard no_grad;
  sum(sums_);
  const Layout at{concepts_, d_sae_};
  auto positive_sums = sums_.narrow(0, at.positive_sums(), concepts_ * d_sae_).view({concepts_, d_sae_});
  auto totals = sums_.narrow(0, at.totals(), d_sae_);
  auto positives = sums_.narrow(0, at.positives(), concepts_);
  const double fit_rows = sums_[at.rows()].item<double>();
  auto probe_counts = sums_.narrow(0, at.probe_counts(), 3 * concepts_).view({3, concepts_});

  std::vector<ConceptAbsorption> out(static_cast<size_t>(concepts_));
  for (int64_t c = 0; c < concepts_; ++c) {
    auto& concept = out[static_cast<size_t>(c)];
    const double tp = probe_counts[0][c].item<double>(), fp = probe_counts[1][c].item<double>(),
                 fn = probe_counts[2][c].item<double>();
    concept.name = names_[static_cast<size_t>(c)];
    concept.positives = static_cast<int64_t>(tp + fn);
    concept.probe_f1 = f1_score(tp, fp, fn);
  }

  // Latents ranked per concept by their mean on its positive rows minus their mean on the others.
  const int64_t width = std::min(cfg_.max_k, d_sae_);
  auto on_mean = positive_sums / positives.clamp_min(1.0).unsqueeze(1);
  auto off_mean = (totals.unsqueeze(0) - positive_sums) / (fit_rows - positives).clamp_min(1.0).unsqueeze(1);
  auto order = std::get<1>(torch::sort(on_mean - off_mean, /*stable=*/true, /*dim=*/1, /*descending=*/true))
                   .narrow(1, 0, width)
                   .contiguous();
  std::vector<std::vector<int64_t>> ranked(static_cast<size_t>(concepts_)), main(static_cast<size_t>(concepts_));
  std::vector<int64_t> open;
  for (int64_t c = 0; c < concepts_; ++c) {
    ranked[static_cast<size_t>(c)].assign(order[c].data_ptr<int64_t>(), order[c].data_ptr<int64_t>() + width);
    // A concept whose probe reads it poorly is not scored at all: its direction is not the concept's.
    const double p = positives[c].item<double>();
    if (p >= 1 && fit_rows - p >= 1 && out[static_cast<size_t>(c)].probe_f1 >= cfg_.min_f1) open.push_back(c);
  }
  auto fit_values = ranked_values(fit_, ranked, width), score_values = ranked_values(score_, ranked, width);
  const auto fit_labels = concept_major(fit_.on, fit_.rows()), score_labels = concept_major(score_.on, score_.rows());
  std::vector<double> best(static_cast<size_t>(concepts_), -100.0);
  std::vector<torch::Tensor> previous(static_cast<size_t>(concepts_));  // k - 1's weights: where k's Newton starts
  // k-sparse probes for k = 1, 2, ...: a concept keeps its latents while each k adds > f1_jump.
  for (int64_t k = 1; k <= width && !open.empty(); ++k) {
    auto start = torch::zeros({static_cast<int64_t>(open.size()), k + 1}, torch::kDouble);
    for (size_t i = 0; i < open.size(); ++i) {
      const auto& before = previous[static_cast<size_t>(open[i])];
      if (!before.defined()) continue;
      start[static_cast<int64_t>(i)].narrow(0, 0, k - 1).copy_(before.narrow(0, 0, k - 1));
      start[static_cast<int64_t>(i)][k] = before[k - 1];  // the bias
    }
    auto w = fit_sparse_probes(fit_values, open, k, fit_labels, positives, fit_rows, start, sum);
    auto counts = sparse_probe_counts(score_values, open, k, score_labels, w);
    sum(counts);
    std::vector<int64_t> still_open;
    for (size_t i = 0; i < open.size(); ++i) {
      const int64_t c = open[i];
      const double f1 = f1_score(counts[static_cast<int64_t>(i)][0].item<double>(), counts[static_cast<int64_t>(i)][1].item<double>(),
                                 counts[static_cast<int64_t>(i)][2].item<double>());
      if (!(f1 > best[static_cast<size_t>(c)] + cfg_.f1_jump)) continue;
      best[static_cast<size_t>(c)] = f1;
      previous[static_cast<size_t>(c)] = w[static_cast<int64_t>(i)].clone();
      auto& concept = out[static_cast<size_t>(c)];
      concept.sparse_f1 = f1;
      main[static_cast<size_t>(c)].assign(ranked[static_cast<size_t>(c)].begin(), ranked[static_cast<size_t>(c)].begin() + k);
      still_open.push_back(c);
    }
    open = std::move(still_open);
  }

  auto scores = torch::zeros({concepts_, 3}, torch::kDouble);
  score_absorption(main, scores);
  sum(scores);
  for (int64_t c = 0; c < concepts_; ++c) {
    auto& concept = out[static_cast<size_t>(c)];
    concept.main_latents = main[static_cast<size_t>(c)];
    concept.scored = static_cast<int64_t>(scores[c][2].item<double>());
    const double rows = static_cast<double>(concept.scored);
    concept.absorption_fraction = rows > 0 ? scores[c][0].item<double>() / rows : nan();
    concept.full_absorption = rows > 0 ? scores[c][1].item<double>() / rows : nan();
    concept.counted = concept.scored >= cfg_.min_rows && !concept.main_latents.empty();
  }
  return out;
}

std::map<std::string, double> ProbeAbsorption::summary(const std::vector<ConceptAbsorption>& concepts) {
  double fraction = 0, full = 0, f1 = 0, split = 0, n = 0;
  for (const auto& c : concepts) {
    if (!c.counted) continue;
    fraction += c.absorption_fraction, full += c.full_absorption, f1 += c.probe_f1;
    split += static_cast<double>(c.main_latents.size()), n += 1;
  }
  auto mean = [n](double total) { return n > 0 ? total / n : nan(); };
  return {{"probe_absorption_fraction", mean(fraction)},
          {"probe_full_absorption", mean(full)},
          {"probe_f1", mean(f1)},
          {"probe_split_latents", mean(split)},
          {"probe_classes", n}};
}

}  // namespace sweep::sae
