// The tracked pairs' statistics and penalty, dense or over candidates, the drift bound that says
// when the candidates must be found anew, and the state's checkpoint tensors.
#include "sae/pair_tracker.h"

#include <limits>
#include <stdexcept>

#include "sae/candidate_pairs.h"

namespace sweep::sae {
namespace {

// Float rounding of the Gram and of the unit rows, well above what they can reach.
constexpr double kCosineSlack = 1e-4;
constexpr const char* kCosineAtSearch = "absorption.pairs.cosine";

torch::Tensor tensor_or_throw(const std::map<std::string, torch::Tensor>& saved, const std::string& name) {
  auto it = saved.find(name);
  if (it == saved.end()) throw std::runtime_error("lacks tensor " + name);
  return it->second;
}

void expect_shape(const torch::Tensor& t, const std::string& name, std::vector<int64_t> shape, torch::ScalarType type) {
  if (t.sizes().vec() != shape || t.scalar_type() != type) {
    throw std::runtime_error("tensor " + name + " has the wrong shape or dtype for this job");
  }
}

}  // namespace

PairTracker::PairTracker(const AbsorptionConfig& cfg, int64_t d_sae, const torch::TensorOptions& options)
    : cfg_(cfg), d_sae_(d_sae), options_(options) {
  P = torch::zeros({d_sae}, options);
  if (cfg.pairs == PairTracking::Dense) {
    become_dense();
  } else {
    auto index = options.dtype(torch::kLong);
    i_ = torch::zeros({0}, index);
    j_ = torch::zeros({0}, index);
    entry_ = torch::zeros({0}, index);
    Q_ = torch::zeros({0}, options);
    // Not searched yet (d_in 0): the first refresh_due says so.
    reference_ = torch::zeros({d_sae, 0}, options.dtype(torch::kBFloat16));
    reference_error_ = torch::zeros({d_sae}, options);
    outside_max_ = torch::zeros({d_sae}, options);
    cosine_ = torch::zeros({0}, options);
  }
}

int64_t PairTracker::tracked_pairs() const {
  if (!enabled()) return 0;
  return dense() ? d_sae_ * (d_sae_ - 1) / 2 : i_.numel();
}

int64_t PairTracker::counts_numel() const {
  if (!enabled()) return 0;
  return dense() ? d_sae_ * d_sae_ : i_.numel();
}

torch::Tensor PairTracker::count_co_firing(const torch::Tensor& fired, const torch::Tensor& bits) const {
  torch::NoGradGuard no_grad;
  if (counts_from_bits()) return pair_co_firing(bits.defined() ? bits : packed_firing(fired), i_, j_);
  auto active = fired.to(P.scalar_type());
  return active.t().mm(active).flatten();
}

void PairTracker::update(const torch::Tensor& fired, const torch::Tensor& co_fired, int64_t global_rows) {
  torch::NoGradGuard no_grad;
  ++updates_;
  if (dense()) {
    dense_.update(fired, co_fired, global_rows);
    P = dense_.P;  // one tensor
    return;
  }
  double w = (1.0 - cfg_.ema_decay) / static_cast<double>(global_rows);
  P = (P * cfg_.ema_decay).add_(fired, w);
  Q_ = (Q_ * cfg_.ema_decay).add_(co_fired, w);
}

torch::Tensor PairTracker::corrected_Q() const {
  // Q_p (1 - beta^n) / (1 - beta^h): h of the n updates since the pair entered; exactly Q_p for a
  // pair tracked from the first update, so that candidates then agree with dense bit for bit.
  auto history = (updates_ - entry_).to(torch::kDouble);
  auto all = torch::full_like(history, static_cast<double>(updates_));
  auto factor = (1.0 - torch::pow(cfg_.ema_decay, all)) / (1.0 - torch::pow(cfg_.ema_decay, history)).clamp_min(1e-300);
  return Q_ * factor.to(Q_.scalar_type());
}

const PairTracker::RowsSeen& PairTracker::rows_seen(const torch::Tensor& W_dec) const {
  const void* of = W_dec.unsafeGetTensorImpl();
  if (seen_.unit.defined() && seen_of_ == of && seen_version_ == W_dec._version()) return seen_;
  torch::NoGradGuard no_grad;
  seen_.unit = unit_rows(W_dec.detach());
  seen_.drift = reference_.size(1) != W_dec.size(1)  // not searched yet
                    ? torch::full({d_sae_}, std::numeric_limits<double>::infinity(), seen_.unit.options())
                    : (seen_.unit - reference_).norm(2, 1) + reference_error_;  // bfloat16 widened as it is read
  seen_of_ = of;
  seen_version_ = W_dec._version();
  return seen_;
}

PairTracker::CandidateFlags PairTracker::candidate_flags(const RowsSeen& rows) const {
  torch::NoGradGuard no_grad;
  const auto& unit = rows.unit;
  const auto& drift = rows.drift;
  auto Q = corrected_Q();
  auto P_i = P.index_select(0, i_), P_j = P.index_select(0, j_);
  auto active = (P_i > cfg_.activation_threshold).logical_and_(P_j > cfg_.activation_threshold);
  auto ratio = [&](const torch::Tensor& denom) {
    return torch::where(denom > 0, Q / denom.clamp_min(1e-30), torch::zeros_like(Q));
  };
  // R_ij for the ordered pair (i, j) and R_ji for (j, i), as the dense matrix has them.
  auto R_ij = cfg_.ratio == RatioKind::Lift ? ratio(P_i * P_j) : ratio(P_j);
  auto R_ji = cfg_.ratio == RatioKind::Lift ? R_ij : ratio(P_i);
  auto over_ij = active.logical_and(R_ij > cfg_.ratio_threshold);
  auto over_ji = active.logical_and(R_ji > cfg_.ratio_threshold);
  // Only pairs that pass the firing and ratio tests, and that the drift leaves within reach of tau,
  // need their cosine: |cos(now) - cos(at the search)| <= drift_i + drift_j.
  auto reach = cosine_ + drift.index_select(0, i_) + drift.index_select(0, j_) > cfg_.dot_threshold - kCosineSlack;
  CandidateFlags out;
  out.at = positions_to_visit(over_ij.logical_or(over_ji).logical_and_(reach));
  out.i = i_.index_select(0, out.at);
  out.j = j_.index_select(0, out.at);
  auto near = pair_cosines(unit, out.i, out.j) > cfg_.dot_threshold;
  out.ij = over_ij.index_select(0, out.at).logical_and_(near);
  out.ji = over_ji.index_select(0, out.at).logical_and_(near);
  auto zero = torch::zeros({out.at.numel()}, Q.options());
  out.weights = torch::where(out.ij, R_ij.index_select(0, out.at) - cfg_.ratio_threshold, zero) +
                torch::where(out.ji, R_ji.index_select(0, out.at) - cfg_.ratio_threshold, zero);
  return out;
}

AbsorptionPenalty PairTracker::penalty(const torch::Tensor& W_dec) const {
  const bool short_history = static_cast<double>(updates_) < 5.0 / (1.0 - cfg_.ema_decay);
  if (dense()) {
    auto out = absorption_penalty(W_dec, dense_, cfg_);
    out.flagged_short_history = short_history ? out.flagged.clone() : torch::zeros_like(out.flagged);
    return out;
  }
  const auto& rows = rows_seen(W_dec);
  auto flags = candidate_flags(rows);
  auto young = (updates_ - entry_.index_select(0, flags.at)).to(torch::kDouble) < 5.0 / (1.0 - cfg_.ema_decay);
  AbsorptionPenalty out;
  auto weighed = positions_to_visit(flags.ij.logical_or(flags.ji));
  out.loss = weighted_pair_cosines(W_dec, rows.unit, flags.i.index_select(0, weighed), flags.j.index_select(0, weighed),
                                   flags.weights.index_select(0, weighed));
  out.flagged = (flags.ij.sum() + flags.ji.sum()).to(P.scalar_type());
  out.flagged_short_history =
      (flags.ij.logical_and(young).sum() + flags.ji.logical_and(young).sum()).to(P.scalar_type());
  return out;
}

torch::Tensor PairTracker::flagged_pairs(const torch::Tensor& W_dec) const {
  torch::NoGradGuard no_grad;
  if (dense()) {
    auto mask = flagged_mask(decoder_cosines(W_dec.detach()), ratio_matrix(dense_, cfg_.ratio), P, cfg_);
    return torch::nonzero(mask);
  }
  auto flags = candidate_flags(rows_seen(W_dec));
  auto ij = torch::stack({flags.i.masked_select(flags.ij), flags.j.masked_select(flags.ij)}, 1);
  auto ji = torch::stack({flags.j.masked_select(flags.ji), flags.i.masked_select(flags.ji)}, 1);
  auto all = torch::cat({ij, ji});
  auto order = torch::argsort(all.select(1, 0) * d_sae_ + all.select(1, 1));
  return all.index_select(0, order);
}

torch::Tensor PairTracker::refresh_due(const torch::Tensor& W_dec) const {
  auto no = torch::zeros({}, options_.dtype(torch::kBool));
  if (!enabled() || dense()) return no;
  if (updates_ - searched_at_ >= cfg_.refresh_every || reference_.size(1) != W_dec.size(1)) return no.logical_not();
  return outside_cosine_bound(outside_max_, rows_seen(W_dec).drift) > cfg_.dot_threshold - kCosineSlack;
}

std::string PairTracker::refresh(const torch::Tensor& W_dec) {
  if (!enabled() || dense()) return "";
  torch::NoGradGuard no_grad;
  auto unit = rows_seen(W_dec).unit;  // refresh_due has just computed them, as a rule
  const double needed = needed_threshold();
  auto found = find_candidates(unit, watch_threshold(unit));
  const int64_t n = found.i.numel(), all = d_sae_ * (d_sae_ - 1) / 2;
  const int64_t n_needed = (found.cosine > needed).sum().item<int64_t>();
  if (static_cast<double>(n_needed) > cfg_.max_candidate_fraction * static_cast<double>(all)) {
    become_dense();
    return std::to_string(n_needed) + " of the " + std::to_string(all) + " pairs have decoder cosine above tau - margin = " +
           std::to_string(needed) + ", more than absorption.max_candidate_fraction = " +
           std::to_string(cfg_.max_candidate_fraction) + "; tracking every pair (dense) from step " + std::to_string(updates_);
  }
  auto keys = found.i * d_sae_ + found.j;
  auto Q = torch::zeros({n}, options_);
  auto entry = torch::full({n}, updates_, options_.dtype(torch::kLong));
  if (i_.numel() > 0 && n > 0) {  // pairs still among the candidates keep their history
    auto old_keys = i_ * d_sae_ + j_;
    auto at = torch::searchsorted(old_keys, keys).clamp_max(old_keys.numel() - 1);
    auto kept = old_keys.index_select(0, at) == keys;
    Q = torch::where(kept, Q_.index_select(0, at), Q);
    entry = torch::where(kept, entry_.index_select(0, at), entry);
  }
  i_ = found.i;
  j_ = found.j;
  Q_ = Q;
  entry_ = entry;
  reference_ = unit.to(torch::kBFloat16);
  reference_error_ = (reference_.to(unit.scalar_type()) - unit).norm(2, 1);
  outside_max_ = found.outside_max;
  cosine_ = found.cosine.to(options_.dtype());
  searched_at_ = updates_;
  forget_rows_seen();
  return "";
}

double PairTracker::watch_threshold(const torch::Tensor& unit) const {
  const double needed = needed_threshold(), widest = cfg_.dot_threshold - cfg_.watch_margin;
  if (widest >= needed) return needed;
  const double budget = cosine_above_pair_count(unit, cfg_.watch_pairs_per_latent * d_sae_);
  return std::min(needed, std::max(widest, budget));
}

void PairTracker::become_dense() {
  torch::NoGradGuard no_grad;
  dense_.decay = cfg_.ema_decay;
  dense_.P = P;
  dense_.Q = torch::zeros({d_sae_, d_sae_}, options_);
  if (i_.defined() && i_.numel() > 0) {  // the candidates' history carries over; other pairs start now
    auto Q = corrected_Q();
    dense_.Q.index_put_({i_, j_}, Q);
    dense_.Q.index_put_({j_, i_}, Q);
  }
  dense_.Q.diagonal().copy_(P);
  i_ = j_ = Q_ = entry_ = reference_ = reference_error_ = outside_max_ = cosine_ = torch::Tensor();
  forget_rows_seen();
}

torch::Tensor PairTracker::shape_header() const {
  return torch::tensor({static_cast<int64_t>(dense()), dense() ? int64_t{0} : i_.numel(), searched_at_,
                        dense() ? int64_t{0} : reference_.size(1)},
                       torch::kLong);
}

void PairTracker::reshape(const torch::Tensor& header, int64_t updates) {
  updates_ = updates;
  auto h = header.to(torch::kCPU, torch::kLong);
  if (h[0].item<int64_t>() != 0) {
    if (!dense()) become_dense();
    return;
  }
  const int64_t n = h[1].item<int64_t>(), d_in = h[3].item<int64_t>();
  auto index = options_.dtype(torch::kLong);
  i_ = torch::zeros({n}, index);
  j_ = torch::zeros({n}, index);
  entry_ = torch::zeros({n}, index);
  Q_ = torch::zeros({n}, options_);
  reference_ = torch::zeros({d_sae_, d_in}, options_.dtype(torch::kBFloat16));
  reference_error_ = torch::zeros({d_sae_}, options_);
  outside_max_ = torch::zeros({d_sae_}, options_);
  cosine_ = torch::zeros({n}, options_);
  searched_at_ = h[2].item<int64_t>();
  forget_rows_seen();
}

std::vector<std::pair<std::string, torch::Tensor>> PairTracker::tensors() const {
  if (!enabled()) return {};
  if (dense()) return {{"absorption.P", P}, {"absorption.Q", dense_.Q}};
  return {{"absorption.P", P},
          {"absorption.pairs.shape", shape_header()},
          {"absorption.pairs.i", i_},
          {"absorption.pairs.j", j_},
          {"absorption.pairs.Q", Q_},
          {"absorption.pairs.entry", entry_},
          {"absorption.pairs.reference", reference_},
          {"absorption.pairs.reference_error", reference_error_},
          {"absorption.pairs.outside_max", outside_max_},
          {kCosineAtSearch, cosine_}};
}

void PairTracker::restore(const std::map<std::string, torch::Tensor>& saved, int64_t updates) {
  torch::NoGradGuard no_grad;
  auto saved_P = tensor_or_throw(saved, "absorption.P");
  expect_shape(saved_P, "absorption.P", {d_sae_}, P.scalar_type());
  if (saved.count("absorption.Q")) {
    auto Q = tensor_or_throw(saved, "absorption.Q");
    expect_shape(Q, "absorption.Q", {d_sae_, d_sae_}, P.scalar_type());
    if (!dense()) become_dense();
    dense_.Q.copy_(Q);
  } else {
    auto shape = tensor_or_throw(saved, "absorption.pairs.shape");
    expect_shape(shape, "absorption.pairs.shape", {4}, torch::kLong);
    if (shape[0].item<int64_t>() != 0) throw std::runtime_error("tensor absorption.pairs.shape says dense but there is no Q");
    const int64_t n = shape[1].item<int64_t>();
    std::map<std::string, std::pair<std::vector<int64_t>, torch::ScalarType>> want = {
        {"absorption.pairs.i", {{n}, torch::kLong}},
        {"absorption.pairs.j", {{n}, torch::kLong}},
        {"absorption.pairs.Q", {{n}, P.scalar_type()}},
        {"absorption.pairs.entry", {{n}, torch::kLong}},
        {"absorption.pairs.reference", {{d_sae_, shape[3].item<int64_t>()}, torch::kBFloat16}},
        {"absorption.pairs.reference_error", {{d_sae_}, P.scalar_type()}},
        {"absorption.pairs.outside_max", {{d_sae_}, P.scalar_type()}},
        {kCosineAtSearch, {{n}, P.scalar_type()}}};
    // Checkpoints from before the cosines were kept: +inf computes every candidate's cosine.
    const bool has_cosines = saved.count(kCosineAtSearch) > 0;
    if (!has_cosines) want.erase(kCosineAtSearch);
    for (const auto& [name, spec] : want) expect_shape(tensor_or_throw(saved, name), name, spec.first, spec.second);
    auto i = saved.at("absorption.pairs.i"), j = saved.at("absorption.pairs.j");
    if (n > 0 && (i.min().item<int64_t>() < 0 || (i >= j).any().item<bool>() || j.max().item<int64_t>() >= d_sae_)) {
      throw std::runtime_error("tensor absorption.pairs.i/j holds pairs outside 0 <= i < j < d_sae");
    }
    if (dense()) throw std::runtime_error("the checkpoint tracks candidate pairs, this job tracks every pair");
    reshape(shape, updates);
    for (auto& [name, target] : tensors()) {
      if (name != "absorption.pairs.shape" && (name != kCosineAtSearch || has_cosines)) target.copy_(saved.at(name));
    }
    if (!has_cosines) cosine_.fill_(std::numeric_limits<double>::infinity());
  }
  P.copy_(saved_P);
  updates_ = updates;
}

}  // namespace sweep::sae
