#include "sae/linear_assignment.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <utility>

namespace sweep::sae {
namespace {

// Minimum-cost assignment of every one of n rows to a distinct one of m >= n columns.
// `cost` is a row-major [n, m] array. Returns the column of each row.
//
// Shortest augmenting path algorithm with potentials (Jonker-Volgenant, in the form of
// Crouse 2016, "On implementing 2D rectangular assignment algorithms"): rows are added
// one at a time, and each is joined to the matching by a Dijkstra search for the
// cheapest augmenting path over reduced costs cost[i][j] - u[i] - v[j], which the
// potentials keep non-negative. Each search is O(n m), so the whole is O(n^2 m).
std::vector<int64_t> min_cost_assignment(const double* cost, int64_t n, int64_t m) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n, 0.0);          // row potentials
  std::vector<double> v(m, 0.0);          // column potentials
  std::vector<int64_t> col_of(n, -1);     // column matched to each row
  std::vector<int64_t> row_of(m, -1);     // row matched to each column
  std::vector<double> dist(m);            // shortest path length to each column
  std::vector<int64_t> prev_row(m);       // row from which the shortest path enters a column
  std::vector<int64_t> unvisited(m);      // columns not yet settled, in [0, n_unvisited)
  std::vector<char> row_visited(n);
  std::vector<char> col_visited(m);

  for (int64_t new_row = 0; new_row < n; ++new_row) {
    std::fill(dist.begin(), dist.end(), kInf);
    std::fill(row_visited.begin(), row_visited.end(), 0);
    std::fill(col_visited.begin(), col_visited.end(), 0);
    std::iota(unvisited.begin(), unvisited.end(), 0);
    int64_t n_unvisited = m;

    // Dijkstra from new_row: settle the nearest column each step, stop at a free one.
    double path_len = 0.0;  // distance of the most recently settled column
    int64_t row = new_row;
    int64_t sink = -1;
    while (sink < 0) {
      row_visited[row] = 1;
      const double* row_cost = cost + row * m;
      const double base = path_len - u[row];
      int64_t nearest = -1;  // position in `unvisited`
      double nearest_dist = kInf;
      for (int64_t k = 0; k < n_unvisited; ++k) {
        const int64_t j = unvisited[k];
        const double d = base + row_cost[j] - v[j];
        if (d < dist[j]) {
          dist[j] = d;
          prev_row[j] = row;
        }
        // On ties prefer a free column: it ends the search at once.
        if (dist[j] < nearest_dist || (dist[j] == nearest_dist && row_of[j] < 0)) {
          nearest_dist = dist[j];
          nearest = k;
        }
      }
      const int64_t col = unvisited[nearest];
      unvisited[nearest] = unvisited[--n_unvisited];
      col_visited[col] = 1;
      path_len = nearest_dist;
      if (row_of[col] < 0) {
        sink = col;
      } else {
        row = row_of[col];
      }
    }

    // Update potentials so every edge of the search tree has zero reduced cost.
    u[new_row] += path_len;
    for (int64_t i = 0; i < n; ++i) {
      if (row_visited[i] && i != new_row) u[i] += path_len - dist[col_of[i]];
    }
    for (int64_t j = 0; j < m; ++j) {
      if (col_visited[j]) v[j] -= path_len - dist[j];
    }

    // Augment: flip the matching along the path from the sink back to new_row.
    int64_t col = sink;
    while (true) {
      const int64_t i = prev_row[col];
      row_of[col] = i;
      std::swap(col_of[i], col);
      if (i == new_row) break;
    }
  }
  return col_of;
}

}  // namespace

std::vector<int64_t> max_weight_matching(const torch::Tensor& weights) {
  TORCH_CHECK(weights.dim() == 2, "max_weight_matching: weights must be 2-D, got ",
              weights.dim(), "-D");
  TORCH_CHECK(weights.device().is_cpu(), "max_weight_matching: weights must be on the CPU");
  TORCH_CHECK(weights.is_floating_point(), "max_weight_matching: weights must be floating point");

  const int64_t n_rows = weights.size(0);
  const int64_t n_cols = weights.size(1);
  if (n_rows == 0 || n_cols == 0) return std::vector<int64_t>(n_rows, -1);

  torch::NoGradGuard no_grad;
  TORCH_CHECK(torch::isfinite(weights).all().item<bool>(),
              "max_weight_matching: weights must be finite");

  // The solver needs at least as many columns as rows, so tall inputs are transposed.
  const bool transposed = n_rows > n_cols;
  const torch::Tensor oriented = transposed ? weights.t() : weights;
  const int64_t n = oriented.size(0);
  const int64_t m = oriented.size(1);

  const torch::Tensor cost_tensor = oriented.neg().to(torch::kFloat64).contiguous();
  const std::vector<int64_t> assignment =
      min_cost_assignment(cost_tensor.data_ptr<double>(), n, m);

  if (!transposed) return assignment;
  std::vector<int64_t> col_of_row(n_rows, -1);
  for (int64_t col = 0; col < n_cols; ++col) col_of_row[assignment[col]] = col;
  return col_of_row;
}

}  // namespace sweep::sae
