// Generates rows [0, N) of the synthetic stream in chunks and stores them with the ground
// truth: activations [N, d_in], directions, parents, feature_acts_{indptr,indices,values}.
#include "launcher/data_export.h"

#include <spdlog/spdlog.h>

#include "common/exit_codes.h"
#include "config/config_error.h"
#include "config/job_settings.h"
#include "config/sweep_file.h"
#include "sharding/safetensors.h"
#include "sharding/synthetic.h"

namespace sweep::launcher {

int export_synthetic_data(const ExportOptions& options) {
  sharding::DataConfig data;
  try {
    auto spec = load_sweep(options.file, options.overrides);
    if (spec.base["data.source"] != "synthetic") {
      throw ConfigError(options.file.filename().string() + ": data.source = " + spec.base["data.source"].dump() +
                        ": `sweep data export` writes the synthetic data set only");
    }
    data = to_data_config(spec.base);
  } catch (const ConfigError& e) {
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  int64_t n = options.tokens.value_or(data.eval_tokens);
  if (n < 1) {
    spdlog::error("--tokens {}: must be at least 1", n);
    return kExitInvalidInput;
  }
  auto cfg = data.synthetic;
  cfg.seed = data.seed;
  sharding::SyntheticSource source(cfg);

  std::vector<torch::Tensor> activations, indices, values, row_counts;
  const int64_t chunk = 8192;
  for (int64_t first = 0; first < n; first += chunk) {
    auto rows = source.rows(first, std::min(chunk, n - first));
    activations.push_back(rows.activations);
    auto active = rows.feature_acts > 0;
    auto nz = active.nonzero();  // [nnz, 2] row-major order
    indices.push_back(nz.select(1, 1));
    values.push_back(rows.feature_acts.masked_select(active));
    row_counts.push_back(active.sum(1));
  }
  auto indptr = torch::cat({torch::zeros({1}, torch::kLong), torch::cat(row_counts).cumsum(0)});
  sharding::write_safetensors(
      options.out,
      {{"activations", torch::cat(activations)},
       {"directions", source.directions()},
       {"parents", torch::tensor(source.parents(), torch::kLong)},
       {"feature_acts_indptr", indptr},
       {"feature_acts_indices", torch::cat(indices).to(torch::kLong)},
       {"feature_acts_values", torch::cat(values).to(torch::kFloat)}},
      {{"format", "sweep synthetic data"}, {"rows", "0.." + std::to_string(n)}});
  spdlog::info("wrote {} rows of d_in {} with {} ground-truth features to {}", n, source.d_in(), source.n_features(),
               options.out.string());
  return 0;
}

}  // namespace sweep::launcher
