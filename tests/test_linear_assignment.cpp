// Tests for sae/linear_assignment: optimality against brute force on small matrices,
// validity of the matching, exact recovery of permutations, edge cases and speed.
#include "sae/linear_assignment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <tuple>
#include <vector>

namespace {

using sweep::sae::max_weight_matching;

// Weights as a row-major double matrix, whatever the tensor's dtype.
std::vector<std::vector<double>> to_matrix(const torch::Tensor& weights) {
  const torch::Tensor w = weights.to(torch::kFloat64).contiguous();
  std::vector<std::vector<double>> rows(w.size(0));
  for (int64_t i = 0; i < w.size(0); ++i) {
    const double* row = w.data_ptr<double>() + i * w.size(1);
    rows[i].assign(row, row + w.size(1));
  }
  return rows;
}

double matching_weight(const torch::Tensor& weights, const std::vector<int64_t>& col_of_row) {
  const auto w = to_matrix(weights);
  double total = 0.0;
  for (size_t i = 0; i < col_of_row.size(); ++i) {
    if (col_of_row[i] >= 0) total += w[i][col_of_row[i]];
  }
  return total;
}

// Checks one entry per row, columns in range and distinct, and min(n_rows, n_cols) matched.
void expect_valid_matching(const torch::Tensor& weights, const std::vector<int64_t>& col_of_row) {
  const int64_t n_rows = weights.size(0);
  const int64_t n_cols = weights.size(1);
  ASSERT_EQ(static_cast<int64_t>(col_of_row.size()), n_rows);
  std::vector<bool> used(n_cols, false);
  int64_t matched = 0;
  for (int64_t col : col_of_row) {
    if (col == -1) continue;
    ASSERT_GE(col, 0);
    ASSERT_LT(col, n_cols);
    EXPECT_FALSE(used[col]) << "column " << col << " used twice";
    used[col] = true;
    ++matched;
  }
  EXPECT_EQ(matched, std::min(n_rows, n_cols));
}

// Best total over every matching of size min(n_rows, n_cols): each row takes a free
// column or, while more rows than columns remain, stays unmatched.
double brute_force_best(const std::vector<std::vector<double>>& w, size_t row, int64_t skips_left,
                        std::vector<bool>& used) {
  if (row == w.size()) return 0.0;
  double best = -std::numeric_limits<double>::infinity();
  if (skips_left > 0) best = brute_force_best(w, row + 1, skips_left - 1, used);
  for (size_t col = 0; col < used.size(); ++col) {
    if (used[col]) continue;
    used[col] = true;
    best = std::max(best, w[row][col] + brute_force_best(w, row + 1, skips_left, used));
    used[col] = false;
  }
  return best;
}

double brute_force_best(const torch::Tensor& weights) {
  const int64_t n_rows = weights.size(0);
  const int64_t n_cols = weights.size(1);
  std::vector<bool> used(n_cols, false);
  return brute_force_best(to_matrix(weights), 0, std::max<int64_t>(0, n_rows - n_cols), used);
}

void expect_optimal(const torch::Tensor& weights) {
  const std::vector<int64_t> result = max_weight_matching(weights);
  expect_valid_matching(weights, result);
  EXPECT_NEAR(matching_weight(weights, result), brute_force_best(weights), 1e-9)
      << "weights:\n" << weights;
}

// Greedy matching: repeatedly take the heaviest entry whose row and column are both free.
std::vector<int64_t> greedy_matching(const torch::Tensor& weights) {
  const auto w = to_matrix(weights);
  const int64_t n_rows = weights.size(0);
  const int64_t n_cols = weights.size(1);
  std::vector<std::tuple<double, int64_t, int64_t>> entries;
  entries.reserve(n_rows * n_cols);
  for (int64_t i = 0; i < n_rows; ++i) {
    for (int64_t j = 0; j < n_cols; ++j) entries.emplace_back(w[i][j], i, j);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  std::vector<int64_t> col_of_row(n_rows, -1);
  std::vector<bool> col_used(n_cols, false);
  for (const auto& [weight, i, j] : entries) {
    if (col_of_row[i] != -1 || col_used[j]) continue;
    col_of_row[i] = j;
    col_used[j] = true;
  }
  return col_of_row;
}

// Every shape up to 6 x 6, plus a few very wide and very tall ones.
std::vector<std::pair<int64_t, int64_t>> small_shapes() {
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (int64_t r = 1; r <= 6; ++r) {
    for (int64_t c = 1; c <= 6; ++c) shapes.emplace_back(r, c);
  }
  shapes.emplace_back(7, 3);
  shapes.emplace_back(3, 7);
  shapes.emplace_back(2, 8);
  shapes.emplace_back(8, 2);
  return shapes;
}

TEST(LinearAssignment, MatchesBruteForceOnUniformWeights) {
  torch::manual_seed(1);
  for (const auto& [r, c] : small_shapes()) {
    for (int trial = 0; trial < 20; ++trial) expect_optimal(torch::rand({r, c}, torch::kFloat64));
  }
}

TEST(LinearAssignment, MatchesBruteForceWithNegativeWeights) {
  torch::manual_seed(2);
  for (const auto& [r, c] : small_shapes()) {
    for (int trial = 0; trial < 20; ++trial) {
      expect_optimal(torch::randn({r, c}, torch::kFloat64) * 10.0 - 5.0);
      expect_optimal(-torch::rand({r, c}, torch::kFloat64));  // all negative
    }
  }
}

TEST(LinearAssignment, MatchesBruteForceWithTies) {
  torch::manual_seed(3);
  for (const auto& [r, c] : small_shapes()) {
    for (int trial = 0; trial < 20; ++trial) {
      expect_optimal(torch::randint(-2, 3, {r, c}, torch::kFloat64));
      expect_optimal(torch::randint(0, 2, {r, c}, torch::kFloat64));
    }
    expect_optimal(torch::zeros({r, c}, torch::kFloat64));
    expect_optimal(torch::full({r, c}, -3.0, torch::kFloat64));
  }
}

TEST(LinearAssignment, MatchesBruteForceOnFloat32AbsCosines) {
  torch::manual_seed(4);
  for (const auto& [r, c] : small_shapes()) {
    for (int trial = 0; trial < 10; ++trial) {
      const torch::Tensor a = torch::nn::functional::normalize(
          torch::randn({r, 16}), torch::nn::functional::NormalizeFuncOptions().dim(1));
      const torch::Tensor b = torch::nn::functional::normalize(
          torch::randn({c, 16}), torch::nn::functional::NormalizeFuncOptions().dim(1));
      const torch::Tensor cosines = a.matmul(b.t()).abs();
      ASSERT_EQ(cosines.scalar_type(), torch::kFloat32);
      expect_optimal(cosines);
    }
  }
}

TEST(LinearAssignment, RecoversPermutedIdentity) {
  torch::manual_seed(5);
  for (int64_t n : {1, 2, 5, 64, 300}) {
    const torch::Tensor perm = torch::randperm(n, torch::kInt64);
    const torch::Tensor weights = torch::eye(n).index_select(0, perm);
    const std::vector<int64_t> result = max_weight_matching(weights);
    ASSERT_EQ(static_cast<int64_t>(result.size()), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(result[i], perm[i].item<int64_t>()) << "row " << i;
  }
}

TEST(LinearAssignment, RecoversPlantedMatchingInRectangularNoise) {
  torch::manual_seed(6);
  const int64_t n_features = 40;
  const int64_t n_latents = 120;
  // Each feature has one latent at |cosine| ~0.9; all other entries are below 0.3.
  const torch::Tensor planted = torch::randperm(n_latents, torch::kInt64).slice(0, 0, n_features);
  torch::Tensor wide = torch::rand({n_features, n_latents}) * 0.3;
  wide.index_put_({torch::arange(n_features), planted}, 0.9);

  const std::vector<int64_t> by_feature = max_weight_matching(wide);
  for (int64_t i = 0; i < n_features; ++i) EXPECT_EQ(by_feature[i], planted[i].item<int64_t>());

  // The same problem seen from the latents' side: unplanted latents stay unmatched.
  const std::vector<int64_t> by_latent = max_weight_matching(wide.t());
  std::vector<int64_t> expected(n_latents, -1);
  for (int64_t i = 0; i < n_features; ++i) expected[planted[i].item<int64_t>()] = i;
  EXPECT_EQ(by_latent, expected);
}

TEST(LinearAssignment, TallUnmatchedRowsAreMinusOne) {
  const torch::Tensor weights = torch::tensor({{0.1, 0.0}, {0.0, 0.2}, {0.9, 0.1}, {0.0, 0.8}},
                                              torch::kFloat64);
  EXPECT_EQ(max_weight_matching(weights), (std::vector<int64_t>{-1, -1, 0, 1}));
}

TEST(LinearAssignment, NegativeWeightsStillGiveFullMatching) {
  // Leaving rows unmatched would score higher, but every row must be matched: the best
  // full matching is row 0 -> column 0 and row 1 -> column 1 (total -4).
  const torch::Tensor weights = torch::tensor({{-1.0, -5.0, -2.0}, {-4.0, -3.0, -6.0}});
  EXPECT_EQ(max_weight_matching(weights), (std::vector<int64_t>{0, 1}));
}

TEST(LinearAssignment, EmptyInputs) {
  EXPECT_TRUE(max_weight_matching(torch::zeros({0, 0})).empty());
  EXPECT_TRUE(max_weight_matching(torch::zeros({0, 5})).empty());
  EXPECT_EQ(max_weight_matching(torch::zeros({3, 0})), (std::vector<int64_t>{-1, -1, -1}));
}

TEST(LinearAssignment, IsDeterministic) {
  torch::manual_seed(7);
  const torch::Tensor weights = torch::randint(0, 3, {30, 50}, torch::kFloat32);
  const std::vector<int64_t> first = max_weight_matching(weights);
  for (int repeat = 0; repeat < 3; ++repeat) EXPECT_EQ(max_weight_matching(weights), first);
  EXPECT_EQ(max_weight_matching(weights.to(torch::kFloat64)), first);
}

TEST(LinearAssignment, AcceptsNonContiguousInput) {
  torch::manual_seed(8);
  const torch::Tensor base = torch::rand({6, 10}, torch::kFloat64);
  const torch::Tensor strided = base.t().slice(0, 0, 10, 2);  // [5, 6], non-contiguous
  ASSERT_FALSE(strided.is_contiguous());
  expect_optimal(strided);
}

TEST(LinearAssignment, RejectsInvalidInput) {
  EXPECT_THROW(max_weight_matching(torch::zeros({3})), c10::Error);
  EXPECT_THROW(max_weight_matching(torch::zeros({2, 2, 2})), c10::Error);
  EXPECT_THROW(max_weight_matching(torch::zeros({2, 2}, torch::kInt64)), c10::Error);
  EXPECT_THROW(max_weight_matching(torch::tensor({{1.0, std::nan("")}, {0.0, 1.0}})), c10::Error);
}

TEST(LinearAssignment, Large512x2048BeatsGreedy) {
  torch::manual_seed(9);
  const torch::Tensor weights = torch::rand({512, 2048});

  const auto start = std::chrono::steady_clock::now();
  const std::vector<int64_t> result = max_weight_matching(weights);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "max_weight_matching 512x2048: " << seconds << " s\n";
  RecordProperty("seconds_512x2048", std::to_string(seconds));

  expect_valid_matching(weights, result);
  const double optimal_total = matching_weight(weights, result);
  const double greedy_total = matching_weight(weights, greedy_matching(weights));
  std::cout << "total weight: assignment " << optimal_total << ", greedy " << greedy_total << "\n";
  EXPECT_GE(optimal_total, greedy_total - 1e-9);
}

}  // namespace
