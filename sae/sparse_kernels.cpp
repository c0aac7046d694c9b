// The sparse step's CPU loops: each splits its work into contiguous pieces of about equal entries,
// one per thread, and its inner loops over d_in are compiled for AVX2 and FMA besides the baseline
// (sae/cpu_loops.h). Each is named in LibTorch's profiler (RECORD_FUNCTION).
#include "sae/sparse_kernels.h"

#include <algorithm>
#include <vector>

#include <ATen/record_function.h>

#include "sae/cpu_loops.h"

namespace sweep::sae {
namespace {

// The groups (rows or latents) whose first entry lies in [begin, end), given each group's start
// `starts` [groups] (ascending): every group is in exactly one piece, empty groups past the last
// entry in none.
std::pair<int64_t, int64_t> groups_starting_in(const int64_t* starts, int64_t groups, int64_t begin, int64_t end) {
  auto first = std::lower_bound(starts, starts + groups, begin) - starts;
  auto last = std::lower_bound(starts, starts + groups, end) - starts;
  return {first, last};
}

SWEEP_VECTOR_CLONES
void dots_from(int64_t begin, int64_t end, const int64_t* row, const int64_t* idx, const float* A, const float* W,
               int64_t d_in, float* out) {
  for (int64_t e = begin; e < end; ++e) out[e] = dot(A + row[e] * d_in, W + idx[e] * d_in, d_in);
}

// The set (> 0) columns of a row of d_sae, in order, into `columns` (d_sae + 1 slots): every column is
// written, and the next is written over it where it is not set (no branch to mispredict). Returns
// how many are set.
SWEEP_VECTOR_CLONES
int64_t set_columns(const float* f, int64_t d_sae, int64_t* columns) {
  int64_t k = 0;
  for (int64_t l = 0; l < d_sae; ++l) {
    columns[k] = l;
    k += f[l] > 0;
  }
  return k;
}

// The floats of an output row summed in registers at a time: eight vectors.
constexpr int64_t kVectors = 8, kBlock = 8 * kVectors;

// Groups first .. last of the sums: group g's is the sum over its entries (at from starts[g] to
// starts[g + 1], entry e = order[at], or at itself without an order) of weights[e] M[source[e]],
// written as row g of `out` [groups, d_in], or with kColumns as column g of `out` [d_in, groups].
// Each output element is summed entry by entry in that order.
template <bool kOrdered, bool kColumns>
__attribute__((always_inline)) inline void gathered_sums_from(int64_t first, int64_t last, int64_t groups,
                                                              const int64_t* starts, const int64_t* order,
                                                              const int64_t* source, const float* weights,
                                                              const float* M, int64_t d_in, float* out) {
  const int64_t row_step = kColumns ? 1 : d_in, column_step = kColumns ? groups : 1;
  for (int64_t g = first; g < last; ++g) {
    float* sum = out + g * row_step;
    int64_t c = 0;
    for (; c + kBlock <= d_in; c += kBlock) {
      Floats8 block[kVectors] = {};
      for (int64_t at = starts[g]; at < starts[g + 1]; ++at) {
        const int64_t e = kOrdered ? order[at] : at;
        const Floats8 w = Floats8{} + weights[e];
        const auto* m = reinterpret_cast<const Floats8*>(M + source[e] * d_in + c);
        for (int64_t k = 0; k < kVectors; ++k) block[k] += w * m[k];
      }
      for (int64_t k = 0; k < kVectors; ++k) {
        if constexpr (kColumns) {
          for (int64_t j = 0; j < 8; ++j) sum[(c + 8 * k + j) * column_step] = block[k][j];
        } else {
          reinterpret_cast<Floats8*>(sum + c)[k] = block[k];
        }
      }
    }
    for (int64_t at = starts[g]; c < d_in && at < starts[g + 1]; ++at) {  // the rest of a row, past whole blocks
      const int64_t e = kOrdered ? order[at] : at;
      for (int64_t k = c; k < d_in; ++k) sum[k * column_step] += weights[e] * M[source[e] * d_in + k];
    }
  }
}

SWEEP_VECTOR_CLONES
void gathered_sums_in_order(int64_t first, int64_t last, const int64_t* starts, const int64_t* source,
                            const float* weights, const float* M, int64_t d_in, float* out) {
  gathered_sums_from<false, false>(first, last, 0, starts, nullptr, source, weights, M, d_in, out);
}

SWEEP_VECTOR_CLONES
void gathered_sums_by_order(int64_t first, int64_t last, int64_t groups, bool as_columns, const int64_t* starts,
                            const int64_t* order, const int64_t* source, const float* weights, const float* M,
                            int64_t d_in, float* out) {
  if (as_columns) {
    gathered_sums_from<true, true>(first, last, groups, starts, order, source, weights, M, d_in, out);
  } else {
    gathered_sums_from<true, false>(first, last, groups, starts, order, source, weights, M, d_in, out);
  }
}

void check_rows(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.dim() == 2 && t.is_contiguous(), name,
              ": a contiguous float32 CPU matrix");
}

void check_entries(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kLong && t.dim() == 1 && t.is_contiguous(), name,
              ": a contiguous int64 CPU vector");
}

}  // namespace

LatentOrder latent_order(const torch::Tensor& idx, int64_t d_sae) {
  RECORD_FUNCTION("sweep::latent_order", std::vector<c10::IValue>());
  check_entries(idx, "idx");
  const int64_t n = idx.numel();
  auto starts = torch::zeros({d_sae + 1}, torch::kLong);
  auto order = torch::empty({n}, torch::kLong);
  const int64_t* latent = idx.data_ptr<int64_t>();
  int64_t* start = starts.data_ptr<int64_t>();
  for (int64_t e = 0; e < n; ++e) ++start[latent[e] + 1];
  for (int64_t l = 0; l < d_sae; ++l) start[l + 1] += start[l];
  std::vector<int64_t> next(start, start + d_sae);  // counting sort: stable, so rows stay ascending
  int64_t* out = order.data_ptr<int64_t>();
  for (int64_t e = 0; e < n; ++e) out[next[latent[e]]++] = e;
  return {order, starts};
}

ListedEntries list_set_entries(const torch::Tensor& fired, int64_t size) {
  RECORD_FUNCTION("sweep::list_set_entries", std::vector<c10::IValue>());
  auto set = fired.contiguous().to(torch::kFloat);
  const int64_t rows = set.size(0), d_sae = set.size(1);
  const float* f = set.data_ptr<float>();
  auto per_row = torch::empty({rows}, torch::kLong);
  int64_t* count = per_row.data_ptr<int64_t>();
  in_pieces(rows, d_sae, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      int64_t c = 0;
      for (int64_t l = 0; l < d_sae; ++l) c += f[b * d_sae + l] > 0;
      count[b] = c;
    }
  });
  auto offsets = per_row.cumsum(0) - per_row;
  ListedEntries out{torch::zeros({size}, torch::kLong), torch::full({size}, rows - 1, torch::kLong),
                    offsets.clamp_max(size), rows > 0 ? offsets[rows - 1].item<int64_t>() + count[rows - 1] : 0};
  const int64_t* start = offsets.data_ptr<int64_t>();
  int64_t *idx = out.idx.data_ptr<int64_t>(), *row = out.row.data_ptr<int64_t>();
  in_pieces(rows, d_sae, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> columns(d_sae + 1);
    for (int64_t b = begin; b < end && start[b] < size; ++b) {
      const int64_t kept = std::min(set_columns(f + b * d_sae, d_sae, columns.data()), size - start[b]);
      std::copy_n(columns.data(), kept, idx + start[b]);
      std::fill_n(row + start[b], kept, b);
    }
  });
  return out;
}

torch::Tensor sum_over_rows(const torch::Tensor& W, const torch::Tensor& idx, const torch::Tensor& offsets,
                            const torch::Tensor& vals) {
  RECORD_FUNCTION("sweep::sum_over_rows", std::vector<c10::IValue>());
  check_rows(W, "W");
  check_entries(idx, "idx");
  check_entries(offsets, "offsets");
  auto v = vals.contiguous();
  const int64_t rows = offsets.size(0), n = idx.size(0), d_in = W.size(1);
  auto starts = torch::cat({offsets, torch::full({1}, n, offsets.options())});  // the last row ends at n
  auto out = torch::zeros({rows, d_in}, W.options());
  in_pieces(n, d_in, [&](int64_t begin, int64_t end) {
    auto [first, last] = groups_starting_in(starts.data_ptr<int64_t>(), rows, begin, end);
    gathered_sums_in_order(first, last, starts.data_ptr<int64_t>(), idx.data_ptr<int64_t>(), v.data_ptr<float>(),
                           W.data_ptr<float>(), d_in, out.data_ptr<float>());
  });
  return out;
}

torch::Tensor entries_at(const torch::Tensor& M, const torch::Tensor& row, const torch::Tensor& idx) {
  RECORD_FUNCTION("sweep::entries_at", std::vector<c10::IValue>());
  check_rows(M, "M");
  check_entries(row, "row");
  check_entries(idx, "idx");
  auto out = torch::empty({idx.size(0)}, M.options());
  const int64_t d_sae = M.size(1);
  const float* m = M.data_ptr<float>();
  const int64_t *r = row.data_ptr<int64_t>(), *l = idx.data_ptr<int64_t>();
  float* o = out.data_ptr<float>();
  for (int64_t e = 0; e < idx.size(0); ++e) o[e] = m[r[e] * d_sae + l[e]];
  return out;
}

torch::Tensor entry_dots(const torch::Tensor& A, const torch::Tensor& row, const torch::Tensor& W,
                         const torch::Tensor& idx) {
  RECORD_FUNCTION("sweep::entry_dots", std::vector<c10::IValue>());
  check_rows(A, "A");
  check_rows(W, "W");
  check_entries(row, "row");
  check_entries(idx, "idx");
  auto out = torch::empty({idx.size(0)}, W.options());
  in_pieces(idx.size(0), W.size(1), [&](int64_t begin, int64_t end) {
    dots_from(begin, end, row.data_ptr<int64_t>(), idx.data_ptr<int64_t>(), A.data_ptr<float>(), W.data_ptr<float>(),
              W.size(1), out.data_ptr<float>());
  });
  return out;
}

torch::Tensor sum_over_latents(const torch::Tensor& A, const torch::Tensor& row, const torch::Tensor& weights,
                               const LatentOrder& by_latent, LatentSums layout) {
  RECORD_FUNCTION("sweep::sum_over_latents", std::vector<c10::IValue>());
  check_rows(A, "A");
  check_entries(row, "row");
  auto w = weights.contiguous();
  const int64_t d_sae = by_latent.starts.size(0) - 1, d_in = A.size(1);
  const int64_t* starts = by_latent.starts.data_ptr<int64_t>();
  const bool as_columns = layout == LatentSums::AsColumns;
  auto out = as_columns ? torch::zeros({d_in, d_sae}, A.options()) : torch::zeros({d_sae, d_in}, A.options());
  in_pieces(by_latent.order.size(0), d_in, [&](int64_t begin, int64_t end) {
    auto [first, last] = groups_starting_in(starts, d_sae, begin, end);
    gathered_sums_by_order(first, last, d_sae, as_columns, starts, by_latent.order.data_ptr<int64_t>(),
                           row.data_ptr<int64_t>(), w.data_ptr<float>(), A.data_ptr<float>(), d_in,
                           out.data_ptr<float>());
  });
  return out;
}

}  // namespace sweep::sae
