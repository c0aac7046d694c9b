// The sparse code's planned size, its entries (listed or scanned), its encoder values
// (sae/encoder.h) and its decoder (embedding_bag).
#include "sae/sparse_code.h"

#include <algorithm>
#include <cmath>

#include "sae/architecture.h"
#include "sae/encoder.h"

namespace sweep::sae {

torch::Tensor firing(const torch::Tensor& f) { return f.detach().sign(); }

// Each row's count is exact in float32 (at most d_sae); their sum is taken in float64.
torch::Tensor code_entries(const torch::Tensor& fired) { return fired.sum(1).sum(torch::kDouble); }

double sparse_density_limit(const torch::Device& device) {
  return device.is_cpu() ? kSparseDensityOnCpu : kSparseDensityOnGpu;
}

int64_t code_size_for(const SaeConfig& cfg, const torch::Device& device, double entries, int64_t rows, double headroom) {
  if (auto fixed = architecture(cfg.arch).fixed_code_size(cfg, rows)) return *fixed;
  if (cfg.step == StepMode::Dense) return 0;
  const double latents = static_cast<double>(cfg.d_sae) * static_cast<double>(rows);
  const bool too_dense = cfg.step == StepMode::Auto && entries > sparse_density_limit(device) * latents;
  if (!std::isfinite(entries) || too_dense) return 0;
  return std::clamp<int64_t>(static_cast<int64_t>(std::ceil(entries * headroom)), 1, cfg.d_sae * rows);
}

int64_t first_code_size(const SaeConfig& cfg, int64_t rows) {
  if (auto fixed = architecture(cfg.arch).fixed_code_size(cfg, rows)) return *fixed;
  return cfg.step == StepMode::Sparse ? 1 : 0;
}

ChosenLatents fixed_width_code(const torch::Tensor& idx, const torch::Tensor& active) {
  const int64_t rows = idx.size(0), width = idx.size(1);
  return {idx.reshape({-1}), torch::arange(rows, idx.options()).repeat_interleave(width),
          torch::arange(0, rows * width, width, idx.options()), active.reshape({-1})};
}

ChosenLatents largest_entries(const torch::Tensor& f, int64_t width) {
  torch::NoGradGuard no_grad;
  auto [values, idx] = f.topk(std::clamp<int64_t>(width, 1, f.size(1)), 1);
  return fixed_width_code(idx, values > 0);
}

namespace {

// The code of the first `size` of `listed` set entries, given as their flat positions
// (row x d_sae + column, ascending) and the entries before each row's first, [B]; padding at
// position (B - 1) x d_sae.
ChosenLatents code_of_positions(torch::Tensor positions, const torch::Tensor& listed, const torch::Tensor& starts,
                                int64_t d_sae) {
  const int64_t size = positions.size(0);
  return {positions.remainder(d_sae), positions.div(d_sae, "floor"), starts.clamp_max(size),
          torch::arange(size, positions.options()) < listed};
}

}  // namespace

ChosenLatents active_entries(const torch::Tensor& fired, int64_t size) {
  if (!fired.device().is_cpu()) return active_entries_by_scan(fired, size);
  torch::NoGradGuard no_grad;
  size = std::max<int64_t>(size, 1);
  auto listed = list_set_entries(fired, size);
  return {listed.idx, listed.row, listed.offsets, torch::arange(size) < listed.listed};
}

ChosenLatents active_entries_by_scan(const torch::Tensor& fired, int64_t size) {
  torch::NoGradGuard no_grad;
  size = std::max<int64_t>(size, 1);
  const int64_t rows = fired.size(0), d_sae = fired.size(1);
  auto set = (fired > 0).reshape({-1});
  // Slot of a set entry: the set entries before it in the batch. Unset entries, and those past
  // `size`, land in one extra slot, dropped.
  auto running = set.cumsum(0);  // int64
  auto slot = torch::where(set, running - 1, torch::full({}, size, running.options())).clamp_max_(size);
  auto positions = torch::full({size + 1}, (rows - 1) * d_sae, slot.options())
                       .scatter_(0, slot, torch::arange(rows * d_sae, slot.options()))
                       .narrow(0, 0, size);
  auto ends = running.view({rows, d_sae}).select(1, d_sae - 1);  // the set entries up to each row's end
  auto starts = torch::cat({torch::zeros({1}, ends.options()), ends.narrow(0, 0, rows - 1)});
  return code_of_positions(positions, ends[rows - 1], starts, d_sae);
}

torch::Tensor at_code(const torch::Tensor& dense, const ChosenLatents& at) {
  if (dense.device().is_cpu() && !dense.requires_grad()) return entries_at(dense.contiguous(), at.row, at.idx);
  return dense.reshape({-1}).index_select(0, at.row * dense.size(1) + at.idx);
}

SparseCode sparse_code(const ChosenLatents& chosen, const torch::Tensor& pre, const torch::Tensor& x,
                       const torch::Tensor& W_enc, const torch::Tensor& b_enc, const torch::Tensor& b_dec) {
  auto by_latent = chosen.idx.device().is_cpu() ? latent_order(chosen.idx, W_enc.size(1)) : LatentOrder{};
  auto values =
      chosen_preactivations(at_code(pre.detach(), chosen), chosen.idx, chosen.row, by_latent, x, W_enc, b_enc, b_dec);
  return {chosen, values * chosen.active.to(values.scalar_type()), by_latent};
}

namespace {

// The decoder over a code on a CPU: W_dec's gradient sums each latent's entries, the values'
// gradient is a dot product per entry.
struct DecodeOnCpu : torch::autograd::Function<DecodeOnCpu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& W_dec,
                               const torch::Tensor& vals, const torch::Tensor& idx, const torch::Tensor& row,
                               const torch::Tensor& offsets, const torch::Tensor& order, const torch::Tensor& starts) {
    ctx->save_for_backward({W_dec, vals, idx, row, order, starts});
    return sum_over_rows(W_dec, idx, offsets, vals);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    auto saved = ctx->get_saved_variables();
    const auto &W_dec = saved[0], &vals = saved[1], &idx = saved[2], &row = saved[3];
    auto g = grad_output[0].contiguous();
    auto grad_W_dec = ctx->needs_input_grad(0)
                          ? sum_over_latents(g, row, vals, {saved[4], saved[5]}, LatentSums::AsRows)
                          : torch::Tensor();
    auto grad_vals = ctx->needs_input_grad(1) ? entry_dots(g, row, W_dec, idx) : torch::Tensor();
    return {grad_W_dec, grad_vals, {}, {}, {}, {}, {}};
  }
};

}  // namespace

torch::Tensor sparse_decode(const torch::Tensor& W_dec, const SparseCode& code) {
  if (code.by_latent.defined()) {
    return DecodeOnCpu::apply(W_dec, code.vals, code.idx, code.row, code.offsets, code.by_latent.order,
                              code.by_latent.starts);
  }
  return std::get<0>(torch::embedding_bag(W_dec, code.idx, code.offsets, false, /*mode sum*/ 0, false, code.vals));
}

}  // namespace sweep::sae
