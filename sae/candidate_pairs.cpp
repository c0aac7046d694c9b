// Candidate pairs: blocked Gram search, per-pair cosines and (bit-packed) co-firing counts in
// chunks, and the penalty's weighted cosine sum over the pairs it weighs.
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
  // Each block holds the cosines of its rows with every row from its first on (the upper
  // triangle, half the Gram); a row's largest cosine outside its pairs is the larger of what its
  // own block's row and the earlier blocks' columns saw.
  auto row_max = torch::full({d_sae}, none, unit.options()), column_max = row_max.clone();
  std::vector<torch::Tensor> is, js, cosines;
  for (int64_t start = 0; start < d_sae; start += block) {
    const int64_t rows = std::min(block, d_sae - start);
    auto gram = unit.narrow(0, start, rows).mm(unit.narrow(0, start, d_sae - start).t());  // [rows, d_sae - start]
    gram.narrow(1, 0, rows).diagonal().fill_(none);  // a row is never its own pair
    auto found = torch::nonzero(gram > threshold);  // row-major: sorted by (i, j)
    // The found cells by their positions, not by masks over the whole block: a masked select and a
    // masked fill each cost more than the product (one thread, [4096, 4096]: 86 and 53 ms).
    auto row = found.select(1, 0), column = found.select(1, 1);
    auto cell = row * gram.size(1) + column;
    auto i = row + start, j = column + start;
    auto upper = column > row;  // the block's own rows appear on both sides of its diagonal
    is.push_back(i.masked_select(upper));
    js.push_back(j.masked_select(upper));
    auto flat = gram.view({-1});
    cosines.push_back(flat.index_select(0, cell).masked_select(upper));
    flat.index_fill_(0, cell, none);
    row_max.narrow(0, start, rows).copy_(gram.amax(1));
    auto seen = column_max.narrow(0, start, d_sae - start);
    seen.copy_(torch::maximum(seen, gram.amax(0)));
  }
  return {torch::cat(is), torch::cat(js), torch::cat(cosines), torch::maximum(row_max, column_max).clamp_min_(-2.0)};
}

// Without a top-k of every value (189 ms for 16M floats and k = 32768 on one thread): the top k / 8
// of every 16th value give a cut that about 2k values pass; the top k of those. A cut that fewer
// than k pass (a sample unlike the whole) falls back to every value.
double kth_largest(const torch::Tensor& values, int64_t k) {
  constexpr int64_t kStride = 16;
  auto kth = [](const torch::Tensor& v, int64_t n) { return std::get<0>(v.topk(n)).min().item<double>(); };
  if (values.numel() < 4 * kStride * k) return kth(values, k);
  const double cut = kth(values.slice(0, 0, values.numel(), kStride), std::max<int64_t>(1, 2 * k / kStride));
  auto passing = torch::nonzero(values >= cut).flatten();
  return kth(passing.numel() >= k ? values.take(passing) : values, k);
}

double cosine_above_pair_count(const torch::Tensor& unit, int64_t pairs, int64_t block_elements) {
  torch::NoGradGuard no_grad;
  const int64_t d_sae = unit.size(0);
  if (pairs >= d_sae * (d_sae - 1) / 2) return -std::numeric_limits<double>::infinity();
  const int64_t sampled = std::min(d_sae, rows_per_chunk(d_sae, block_elements));
  auto index = torch::TensorOptions().device(unit.device()).dtype(torch::kLong);
  auto rows = torch::arange(sampled, index).mul_(d_sae).div_(sampled, "floor");  // evenly spaced, distinct
  auto gram = unit.index_select(0, rows).mm(unit.t());  // [sampled, d_sae]
  gram.scatter_(1, rows.unsqueeze(1), -std::numeric_limits<double>::infinity());  // a row is never its own pair
  // Over all d_sae rows each pair would be seen twice, once from each end; the sample sees
  // sampled / d_sae of that.
  const double seen = 2.0 * static_cast<double>(pairs) * static_cast<double>(sampled) / static_cast<double>(d_sae);
  const int64_t k = std::clamp<int64_t>(static_cast<int64_t>(seen + 0.5), 1, gram.numel());
  return kth_largest(gram.flatten(), k);
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
    auto a = unit.index_select(0, i.narrow(0, start, len));
    out.narrow(0, start, len).copy_(a.mul_(unit.index_select(0, j.narrow(0, start, len))).sum(1));
  }
  return out;
}

torch::Tensor packed_firing(const torch::Tensor& fired) {
  torch::NoGradGuard no_grad;
  const int64_t rows = fired.size(0), d_sae = fired.size(1), words = (rows + 63) / 64;
  // float32 (or double): a half or bfloat16 product would round its sums, which reach 2^16 - 1.
  auto ones = fired.scalar_type() == torch::kDouble ? fired : fired.to(torch::kFloat);
  if (rows % 64 != 0) ones = torch::constant_pad_nd(ones, {0, 0, 0, 64 * words - rows});  // rows that never fire
  // Sixteen rows to a number, row 16 c + k as 2^k of number c, summed exactly in floating point
  // (below 2^16) by a [1, 16] x [16, d_sae] product per number: one batched pass over the firing.
  // At [1024, 16384] on this project's 2-core machine that took 3.0 ms, against 16.9 ms for one
  // [4 words, B] x [B, d_sae] product, whose left matrix is all zeros but 16 entries a row. Then
  // four numbers to a 64-bit word.
  auto powers = torch::pow(2.0, torch::arange(16, ones.options())).view({1, 1, 16}).expand({4 * words, 1, 16});
  auto chunks = torch::bmm(powers, ones.reshape({4 * words, 16, d_sae})).to(torch::kLong).view({words, 4, d_sae});
  auto shift = torch::tensor({0, 16, 32, 48}, chunks.options()).view({1, 4, 1});
  return chunks.bitwise_left_shift(shift).sum(1).t().contiguous();
}

torch::Tensor packed_code_firing(const ChosenLatents& code, const torch::Tensor& fired, int64_t d_sae) {
  torch::NoGradGuard no_grad;
  const int64_t words = (code.offsets.size(0) + 63) / 64;
  // Entry (b, l) adds bit b % 64 to word b / 64 of latent l. A row lists a latent once, so the bits
  // added to a word are distinct and their sum is their OR (bit 63 is the sign: no carry either).
  auto bit = torch::ones({1}, code.idx.options()).bitwise_left_shift(code.row.remainder(64)) * fired.to(torch::kLong);
  auto slot = code.idx * words + code.row.div(64, "floor");
  return torch::zeros({d_sae * words}, code.idx.options()).index_add_(0, slot, bit).view({d_sae, words});
}

torch::Tensor popcount(const torch::Tensor& words) {
  TORCH_CHECK(words.size(1) < 4096, "popcount: at most 4095 words a row (16-bit sums)");
  // The SWAR count of set bits, with LibTorch's elementwise ops. Each mask keeps bit 63 clear, so
  // the arithmetic right shift of a signed word acts as a logical one.
  auto x = words - words.bitwise_right_shift(1).bitwise_and_(int64_t{0x5555555555555555});
  x = x.bitwise_and(int64_t{0x3333333333333333}).add_(x.bitwise_right_shift(2).bitwise_and_(int64_t{0x3333333333333333}));
  x = x.add_(x.bitwise_right_shift(4)).bitwise_and_(int64_t{0x0f0f0f0f0f0f0f0f});  // each byte holds its count, <= 8
  constexpr int64_t kLow16 = 0xffff, kByteLanes = 0x00ff00ff00ff00ff;
  auto bytes_to_16_bit = [](const torch::Tensor& t) {
    return t.bitwise_and(kByteLanes).add_(t.bitwise_right_shift(8).bitwise_and_(kByteLanes));
  };
  // Sum the words before their bytes: up to 31 words keep each byte below 256 (a top byte of 128 or
  // more makes the word negative; the masks clear what the arithmetic shifts bring in). That spares
  // the per-word horizontal sum. Wider rows sum 16-bit lanes, each below 16 x 4096.
  auto lanes = words.size(1) <= 31 ? bytes_to_16_bit(x.sum(1)) : bytes_to_16_bit(x).sum(1);
  auto total = lanes.bitwise_and(kLow16);
  for (int shift : {16, 32, 48}) total.add_(lanes.bitwise_right_shift(shift).bitwise_and_(kLow16));
  return total.to(torch::kInt);
}

torch::Tensor pair_co_firing(const torch::Tensor& packed, const torch::Tensor& i, const torch::Tensor& j,
                             int64_t chunk_elements) {
  torch::NoGradGuard no_grad;
  const int64_t n = i.numel(), chunk = rows_per_chunk(packed.size(1), chunk_elements);
  auto out = torch::empty({n}, packed.options().dtype(torch::kInt));
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t len = std::min(chunk, n - start);
    auto both = packed.index_select(0, i.narrow(0, start, len)).bitwise_and_(packed.index_select(0, j.narrow(0, start, len)));
    out.narrow(0, start, len).copy_(popcount(both));
  }
  return out;
}

torch::Tensor positions_to_visit(const torch::Tensor& mask) {
  if (mask.device().is_cpu()) return torch::nonzero(mask).flatten();
  return torch::arange(mask.numel(), mask.options().dtype(torch::kLong));
}

namespace {

// sum_p w_p <u_i, u_j> of the unit rows u = W / |W|, with its gradient written out pair by pair:
// row i's share of pair p is w_p (u_j - u_i <u_i, u_j>) / |W_i| (and row j's alike), so only the
// pairs' rows are touched. Autograd through the normalisation would cost passes over all of W.
struct WeightedPairCosines : torch::autograd::Function<WeightedPairCosines> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& W_dec, const torch::Tensor& unit,
                               const torch::Tensor& i, const torch::Tensor& j, const torch::Tensor& weights,
                               int64_t chunk_elements) {
    const int64_t n = i.numel(), chunk = rows_per_chunk(unit.size(1), chunk_elements);
    auto inverse_norm = W_dec.norm(2, 1).clamp_min(1e-12).reciprocal();
    auto grad = torch::zeros_like(W_dec);
    auto total = torch::zeros({}, W_dec.options());
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t len = std::min(chunk, n - start);
      auto pi = i.narrow(0, start, len), pj = j.narrow(0, start, len);
      auto w = weights.narrow(0, start, len);
      auto u_i = unit.index_select(0, pi), u_j = unit.index_select(0, pj);
      auto cosine = (u_i * u_j).sum(1, true);
      total += (w * cosine.squeeze(1)).sum();
      auto w_i = (w * inverse_norm.index_select(0, pi)).unsqueeze(1), w_j = (w * inverse_norm.index_select(0, pj)).unsqueeze(1);
      grad.index_add_(0, pi, (u_j - u_i * cosine).mul_(w_i));
      grad.index_add_(0, pj, (u_i - u_j * cosine).mul_(w_j));
    }
    ctx->save_for_backward({grad});
    return total;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    auto grad = ctx->get_saved_variables()[0] * grad_output[0];
    return {grad, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor weighted_pair_cosines(const torch::Tensor& W_dec, const torch::Tensor& unit, const torch::Tensor& i,
                                    const torch::Tensor& j, const torch::Tensor& weights, int64_t chunk_elements) {
  if (i.numel() == 0) return torch::zeros({}, W_dec.options());
  return WeightedPairCosines::apply(W_dec, unit.detach(), i, j, weights.detach(), chunk_elements);
}

torch::Tensor outside_cosine_bound(const torch::Tensor& outside_max, const torch::Tensor& drift) {
  return (outside_max + drift).max() + drift.max();
}

}  // namespace sweep::sae
