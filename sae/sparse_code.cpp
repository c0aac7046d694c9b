// The sparse code's planned width, its latents (listed or scanned), its encoder values
// (sae/encoder.h) and its decoder (embedding_bag).
#include "sae/sparse_code.h"

#include <algorithm>
#include <cmath>

#include "sae/encoder.h"

namespace sweep::sae {

torch::Tensor firing(const torch::Tensor& f) { return f.detach().sign(); }

torch::Tensor widest_row(const torch::Tensor& fired) { return fired.sum(1).max(); }

int64_t code_width_for(const SaeConfig& cfg, double widest, double headroom) {
  if (cfg.step == StepMode::Dense) return 0;
  const bool sparse = cfg.step == StepMode::Sparse;
  if (cfg.arch == Arch::TopK) return sparse || 10 * cfg.k <= cfg.d_sae ? cfg.k : 0;
  if (!std::isfinite(widest) || (!sparse && 10.0 * widest > static_cast<double>(cfg.d_sae))) return 0;
  return std::clamp<int64_t>(static_cast<int64_t>(std::ceil(widest * headroom)), 1, cfg.d_sae);
}

int64_t first_code_width(const SaeConfig& cfg) {
  if (cfg.arch == Arch::TopK || cfg.step != StepMode::Sparse) return code_width_for(cfg, std::nan(""), 1.0);
  return 1;
}

ChosenLatents largest_entries(const torch::Tensor& f, int64_t width) {
  torch::NoGradGuard no_grad;
  auto [values, idx] = f.topk(std::clamp<int64_t>(width, 1, f.size(1)), 1);
  return {idx, values > 0};
}

namespace {

// The code's active mask [B, width] from each row's count of set entries [B] (any dtype), cut at `width`.
torch::Tensor first_slots(const torch::Tensor& counts, int64_t width) {
  return torch::arange(width, counts.options()).unsqueeze(0) < counts.unsqueeze(1).clamp_max(width);
}

}  // namespace

ChosenLatents active_entries(const torch::Tensor& fired, int64_t width) {
  if (!fired.device().is_cpu()) return active_entries_by_scan(fired, width);
  torch::NoGradGuard no_grad;
  width = std::max<int64_t>(width, 1);
  const int64_t rows = fired.size(0);
  auto at = torch::nonzero(fired);  // [n, 2], row by row, columns ascending within a row
  auto row = at.select(1, 0), column = at.select(1, 1);
  auto per_row = torch::bincount(row, {}, rows);
  auto slot = torch::arange(at.size(0), at.options()) - (per_row.cumsum(0) - per_row).index_select(0, row);
  // Entries past `width` land in one extra column, dropped.
  auto idx = torch::zeros({rows, width + 1}, at.options()).index_put_({row, slot.clamp_max_(width)}, column);
  return {idx.narrow(1, 0, width).contiguous(), first_slots(per_row, width)};
}

ChosenLatents active_entries_by_scan(const torch::Tensor& fired, int64_t width) {
  torch::NoGradGuard no_grad;
  width = std::max<int64_t>(width, 1);
  const int64_t rows = fired.size(0), d_sae = fired.size(1);
  auto set = fired > 0;
  // Slot of a set entry: the set entries before it in its row (exact in float below 2^24 latents).
  // Unset entries, and those past `width`, land in one extra column, dropped.
  auto running = set.to(fired.scalar_type()).cumsum(1);
  auto slot = torch::where(set, running - 1, static_cast<double>(width)).clamp_max_(width).to(torch::kLong);
  auto columns = torch::arange(d_sae, slot.options()).expand({rows, d_sae});
  auto idx = torch::zeros({rows, width + 1}, slot.options()).scatter_(1, slot, columns);
  return {idx.narrow(1, 0, width).contiguous(), first_slots(running.select(1, d_sae - 1), width)};
}

SparseCode sparse_code(const ChosenLatents& chosen, const torch::Tensor& pre, const torch::Tensor& x,
                       const torch::Tensor& W_enc, const torch::Tensor& b_enc, const torch::Tensor& b_dec) {
  SparseCode code;
  code.idx = chosen.idx;
  auto values = chosen_preactivations(pre.detach().gather(1, code.idx), code.idx, x, W_enc, b_enc, b_dec);
  code.vals = values * chosen.active.to(values.scalar_type());
  return code;
}

torch::Tensor sparse_decode(const torch::Tensor& W_dec, const SparseCode& code) {
  const int64_t rows = code.idx.size(0), width = code.idx.size(1);
  auto offsets = torch::arange(0, rows * width, width, code.idx.options());
  return std::get<0>(torch::embedding_bag(W_dec, code.idx.reshape({-1}), offsets, false, /*mode sum*/ 0, false,
                                          code.vals.reshape({-1})));
}

}  // namespace sweep::sae
