// Candidate pairs: blocked Gram search, per-pair cosines and co-firing counts in chunks, and the
// penalty's weighted cosine sum through a sparse matrix product.
#include "sae/candidate_pairs.h"

#include <algorithm>
#include <limits>

namespace sweep::sae {
namespace {

int64_t rows_per_chunk(int64_t row_elements, int64_t chunk_elements) {
  return std::max<int64_t>(1, chunk_elements / std::max<int64_t>(1, row_elements));
}

}  // namespace

torch::Tensor unit_rows(const torch::Tensor& W_dec) { return W_dec / W_dec.norm(2, 1, true).clamp_min(1e-12); }

CandidateSearch find_candidates(const torch::Tensor& unit, double threshold, int64_t block_elements) {
  torch::NoGradGuard no_grad;
  const int64_t d_sae = unit.size(0);
  const int64_t block = rows_per_chunk(d_sae, block_elements);
  const double none = -std::numeric_limits<double>::infinity();
  std::vector<torch::Tensor> is, js, outside;
  for (int64_t start = 0; start < d_sae; start += block) {
    const int64_t rows = std::min(block, d_sae - start);
    auto gram = unit.narrow(0, start, rows).mm(unit.t());  // [rows, d_sae]
    gram.narrow(1, start, rows).diagonal().fill_(none);     // a row is never its own pair
    auto paired = gram > threshold;
    outside.push_back(gram.masked_fill_(paired, none).amax(1).clamp_min_(-2.0));
    // Pairs i < j: the columns from the block's first row on, then j > i among them (few).
    auto found = torch::nonzero(paired.narrow(1, start, d_sae - start));  // row-major: sorted by (i, j)
    auto i = found.select(1, 0) + start, j = found.select(1, 1) + start;
    auto upper = j > i;
    is.push_back(i.masked_select(upper));
    js.push_back(j.masked_select(upper));
  }
  return {torch::cat(is), torch::cat(js), torch::cat(outside)};
}

TopPairs top_cosine_pairs(const torch::Tensor& unit, int64_t k, int64_t block_elements) {
  torch::NoGradGuard no_grad;
  const int64_t d_sae = unit.size(0);
  const int64_t block = rows_per_chunk(d_sae, block_elements);
  const double none = -std::numeric_limits<double>::infinity();
  auto index = torch::TensorOptions().device(unit.device()).dtype(torch::kLong);
  auto cos = torch::empty({0}, unit.options());
  auto i = torch::empty({0}, index), j = torch::empty({0}, index);
  for (int64_t start = 0; start < d_sae; start += block) {
    const int64_t rows = std::min(block, d_sae - start);
    auto gram = unit.narrow(0, start, rows).mm(unit.t());  // [rows, d_sae]
    auto row = torch::arange(start, start + rows, index).unsqueeze(1), col = torch::arange(d_sae, index).unsqueeze(0);
    gram.masked_fill_(col <= row, none);  // pairs i < j only
    auto [value, cell] = gram.flatten().topk(std::min<int64_t>(k, gram.numel()));
    cos = torch::cat({cos, value}), i = torch::cat({i, cell.div(d_sae, "floor") + start});
    j = torch::cat({j, cell.remainder(d_sae)});
    auto best = std::get<1>(cos.topk(std::min<int64_t>(k, cos.numel())));
    cos = cos.index_select(0, best), i = i.index_select(0, best), j = j.index_select(0, best);
  }
  auto real = cos > none;
  return {i.masked_select(real), j.masked_select(real), cos.masked_select(real)};
}

torch::Tensor pair_cosines(const torch::Tensor& unit, const torch::Tensor& i, const torch::Tensor& j,
                           int64_t chunk_elements) {
  torch::NoGradGuard no_grad;
  const int64_t n = i.numel(), chunk = rows_per_chunk(unit.size(1), chunk_elements);
  auto out = torch::empty({n}, unit.options());
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t len = std::min(chunk, n - start);
    auto a = unit.index_select(0, i.narrow(0, start, len)), b = unit.index_select(0, j.narrow(0, start, len));
    out.narrow(0, start, len).copy_((a * b).sum(1));
  }
  return out;
}

torch::Tensor pair_co_firing(const torch::Tensor& active, const torch::Tensor& i, const torch::Tensor& j,
                             int64_t chunk_elements) {
  torch::NoGradGuard no_grad;
  // [d_sae, B] bytes: a latent's firing over the batch is one row, a quarter of float's traffic.
  auto by_latent = (active.t() > 0).to(torch::kByte).contiguous();
  const int64_t n = i.numel(), chunk = rows_per_chunk(by_latent.size(1), chunk_elements);
  auto out = torch::empty({n}, active.options());
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t len = std::min(chunk, n - start);
    auto a = by_latent.index_select(0, i.narrow(0, start, len)), b = by_latent.index_select(0, j.narrow(0, start, len));
    out.narrow(0, start, len).copy_(a.mul_(b).sum(1, false, torch::kInt));
  }
  return out;
}

torch::Tensor weighted_pair_cosines(const torch::Tensor& W_dec, const torch::Tensor& i, const torch::Tensor& j,
                                    const torch::Tensor& weights) {
  auto unit = unit_rows(W_dec);
  const int64_t d_sae = W_dec.size(0);
  auto weight_matrix = torch::sparse_coo_tensor(torch::stack({i, j}), weights.detach(), {d_sae, d_sae},
                                               weights.options().layout(torch::kSparse));
  return (unit * torch::mm(weight_matrix, unit)).sum();
}

torch::Tensor outside_cosine_bound(const torch::Tensor& outside_max, const torch::Tensor& drift) {
  return (outside_max + drift).max() + drift.max();
}

}  // namespace sweep::sae
