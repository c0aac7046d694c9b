// The sparse step's CPU loops (sae/sparse_kernels.h) against LibTorch's own operations for the same
// sums (embedding_bag, index_add, nonzero), on a batch large enough to be split among threads,
// with a width that is not a whole number of the loops' blocks; and the same bits whatever the
// thread count.
#include <gtest/gtest.h>

#include "sae/cpu_loops.h"
#include "sae/sparse_kernels.h"

using namespace sweep;

namespace {

// A batch's firing, about 5% set, with an empty row and a full one.
torch::Tensor some_firing(int64_t rows, int64_t d_sae) {
  torch::manual_seed(11);
  auto fired = (torch::rand({rows, d_sae}) < 0.05).to(torch::kFloat);
  fired[7].zero_();
  fired[8].fill_(1);
  return fired;
}

struct Sums {
  sae::ListedEntries listed, cut;
  torch::Tensor rows, dots, latents, latent_columns;
};

Sums all_loops(const torch::Tensor& fired, const torch::Tensor& W, const torch::Tensor& A, const torch::Tensor& vals,
               int threads) {
  sae::set_cpu_loop_threads(threads);
  Sums out;
  out.listed = sae::list_set_entries(fired, fired.sum().item<int64_t>() + 5);
  out.cut = sae::list_set_entries(fired, 1000);
  const auto& code = out.listed;
  out.rows = sae::sum_over_rows(W, code.idx, code.offsets, vals);
  out.dots = sae::entry_dots(A, code.row, W, code.idx);
  auto by_latent = sae::latent_order(code.idx, W.size(0));
  out.latents = sae::sum_over_latents(A, code.row, vals, by_latent, sae::LatentSums::AsRows);
  out.latent_columns = sae::sum_over_latents(A, code.row, vals, by_latent, sae::LatentSums::AsColumns);
  sae::set_cpu_loop_threads(1);
  return out;
}

}  // namespace

TEST(SparseLoops, EachGivesLibTorchsSumsAndTheSameBitsWithAnyThreadCount) {
  const int64_t rows = 1024, d_sae = 800, d_in = 200;  // 200 = three blocks of 64 and 8 more
  auto fired = some_firing(rows, d_sae);
  auto W = torch::randn({d_sae, d_in}), A = torch::randn({rows, d_in});
  const int64_t set = fired.sum().item<int64_t>(), size = set + 5;
  auto vals = torch::randn({size}) * (torch::arange(size) < set).to(torch::kFloat);  // 0 at padding
  auto one = all_loops(fired, W, A, vals, 1);

  // The listing: nonzero's positions, then padding (latent 0 of the last row); cut after 1000.
  auto at = torch::nonzero(fired);
  EXPECT_EQ(one.listed.listed, set);
  EXPECT_TRUE(torch::equal(one.listed.idx.narrow(0, 0, set), at.select(1, 1)));
  EXPECT_TRUE(torch::equal(one.listed.row.narrow(0, 0, set), at.select(1, 0)));
  EXPECT_TRUE(one.listed.idx.narrow(0, set, 5).eq(0).all().item<bool>());
  EXPECT_TRUE(one.listed.row.narrow(0, set, 5).eq(rows - 1).all().item<bool>());
  auto per_row = fired.sum(1).to(torch::kLong);
  EXPECT_TRUE(torch::equal(one.listed.offsets, per_row.cumsum(0) - per_row));
  EXPECT_EQ(one.cut.listed, set);
  EXPECT_TRUE(torch::equal(one.cut.idx, one.listed.idx.narrow(0, 0, 1000)));
  EXPECT_TRUE(torch::equal(one.cut.offsets, one.listed.offsets.clamp_max(1000)));

  // The sums, against LibTorch's.
  const auto& code = one.listed;
  auto bags = std::get<0>(torch::embedding_bag(W, code.idx, code.offsets, false, 0, false, vals));
  EXPECT_TRUE(torch::allclose(one.rows, bags, 1e-5, 1e-4));
  EXPECT_TRUE(torch::allclose(one.dots, (A.index_select(0, code.row) * W.index_select(0, code.idx)).sum(1), 1e-5, 1e-4));
  auto M = torch::randn({rows, d_sae});
  EXPECT_TRUE(torch::equal(sae::entries_at(M, code.row, code.idx), M.index({code.row, code.idx})));
  auto by_latent = torch::zeros({d_sae, d_in}).index_add_(0, code.idx, A.index_select(0, code.row) * vals.unsqueeze(1));
  EXPECT_TRUE(torch::allclose(one.latents, by_latent, 1e-5, 1e-4));
  EXPECT_GT(one.latents.abs().max().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(one.latent_columns, one.latents.t()));  // the same sums, in W_enc's layout

  // Split among threads (the batch is past a piece's least work), the same bits.
  for (int threads : {2, 3}) {
    auto many = all_loops(fired, W, A, vals, threads);
    EXPECT_TRUE(torch::equal(many.listed.idx, one.listed.idx)) << threads << " threads";
    EXPECT_TRUE(torch::equal(many.listed.row, one.listed.row)) << threads << " threads";
    EXPECT_TRUE(torch::equal(many.cut.row, one.cut.row)) << threads << " threads";
    EXPECT_TRUE(torch::equal(many.rows, one.rows)) << threads << " threads";
    EXPECT_TRUE(torch::equal(many.dots, one.dots)) << threads << " threads";
    EXPECT_TRUE(torch::equal(many.latents, one.latents)) << threads << " threads";
    EXPECT_TRUE(torch::equal(many.latent_columns, one.latent_columns)) << threads << " threads";
  }
}

TEST(SparseLoops, LatentOrderGroupsEachLatentsEntriesInCodeOrder) {
  auto idx = torch::tensor({3, 0, 3, 1, 0, 3}, torch::kLong);
  auto order = sae::latent_order(idx, 5);
  EXPECT_TRUE(torch::equal(order.order, torch::tensor({1, 4, 3, 0, 2, 5}, torch::kLong)));
  EXPECT_TRUE(torch::equal(order.starts, torch::tensor({0, 2, 3, 3, 6, 6}, torch::kLong)));
}
