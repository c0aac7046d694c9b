// Projected gradient descent that lowers the overlap of unit feature directions (see the header).
#include "sharding/spread_directions.h"

#include <cmath>
#include <vector>

namespace sweep::sharding {
namespace {
constexpr double kStepSize = 0.01;

double dot(const float* a, const float* b, int64_t d) {
  double s = 0;
  for (int64_t k = 0; k < d; ++k) s += static_cast<double>(a[k]) * b[k];
  return s;
}
}  // namespace

void spread_directions(float* dirs, int64_t n, int64_t d, int64_t steps) {
  std::vector<double> grad(static_cast<size_t>(n * d));
  for (int64_t step = 0; step < steps; ++step) {
    // The gradient of sum (d_i . d_j)^4 along each row, less its component along the row.
    double mean_norm = 0;
    for (int64_t i = 0; i < n; ++i) {
      double* g = &grad[static_cast<size_t>(i * d)];
      const float* row = dirs + i * d;
      for (int64_t k = 0; k < d; ++k) g[k] = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (j == i) continue;
        const float* other = dirs + j * d;
        const double c = dot(row, other, d), w = c * c * c;
        for (int64_t k = 0; k < d; ++k) g[k] += w * other[k];
      }
      double along = 0, norm = 0;
      for (int64_t k = 0; k < d; ++k) along += g[k] * row[k];
      for (int64_t k = 0; k < d; ++k) {
        g[k] -= along * row[k];
        norm += g[k] * g[k];
      }
      mean_norm += std::sqrt(norm) / static_cast<double>(n);
    }
    if (mean_norm == 0) return;  // already apart (or a single direction)
    for (int64_t i = 0; i < n; ++i) {
      float* row = dirs + i * d;
      const double* g = &grad[static_cast<size_t>(i * d)];
      double norm = 0;
      for (int64_t k = 0; k < d; ++k) {
        row[k] = static_cast<float>(row[k] - kStepSize * g[k] / mean_norm);
        norm += static_cast<double>(row[k]) * row[k];
      }
      const double scale = 1.0 / std::sqrt(norm);
      for (int64_t k = 0; k < d; ++k) row[k] = static_cast<float>(row[k] * scale);
    }
  }
}

}  // namespace sweep::sharding
