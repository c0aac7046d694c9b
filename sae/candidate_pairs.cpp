// Candidate pairs: blocked Gram search, per-pair cosines and co-firing counts in chunks, and the
// penalty's weighted cosine sum through a sparse matrix product.
#include "sae/candidate_pairs.h"

#include <algorithm>

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
  auto columns = torch::arange(d_sae, unit.options().dtype(torch::kLong));
  std::vector<torch::Tensor> is, js, outside;
  for (int64_t start = 0; start < d_sae; start += block) {
    const int64_t rows = std::min(block, d_sae - start);
    auto gram = unit.narrow(0, start, rows).mm(unit.t());  // [rows, d_sae]
    auto row_index = columns.narrow(0, start, rows).unsqueeze(1);
    auto self = columns.unsqueeze(0) == row_index;
    auto paired = (gram > threshold).logical_and_(self.logical_not());
    outside.push_back(gram.masked_fill(paired.logical_or(self), -2.0).amax(1));
    auto upper = torch::nonzero(paired.logical_and_(columns.unsqueeze(0) > row_index));  // row-major: sorted
    is.push_back(upper.select(1, 0) + start);
    js.push_back(upper.select(1, 1));
  }
  return {torch::cat(is), torch::cat(js), torch::cat(outside)};
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
  auto by_latent = active.t().contiguous();  // [d_sae, B]: a latent's firing over the batch is one row
  const int64_t n = i.numel(), chunk = rows_per_chunk(by_latent.size(1), chunk_elements);
  auto out = torch::empty({n}, active.options());
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t len = std::min(chunk, n - start);
    auto a = by_latent.index_select(0, i.narrow(0, start, len)), b = by_latent.index_select(0, j.narrow(0, start, len));
    out.narrow(0, start, len).copy_((a * b).sum(1));
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
