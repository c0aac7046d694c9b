// Summary statistics over seed replicas: mean, sample standard deviation, and the 95% t interval
// of a mean (used for paired differences, where n is small).
#pragma once

#include <optional>
#include <vector>

namespace sweep::launcher {

struct Summary {
  size_t n = 0;
  double mean = 0;
  double sd = 0;  // sample standard deviation (n - 1); 0 for n = 1
  // The 95% t interval of the mean; none for n < 2.
  std::optional<double> ci_low, ci_high;
  // The interval excludes 0: a difference that seed noise does not explain.
  bool excludes_zero() const { return ci_low && (*ci_low > 0 || *ci_high < 0); }
};

// values: at least one.
Summary summarize_values(const std::vector<double>& values);
// The two-sided 95% quantile of Student's t with `df` degrees of freedom (df >= 1).
double t_quantile_95(size_t df);

}  // namespace sweep::launcher
