// `sweep data export`: rows [0, N) of the synthetic stream with their ground truth, in the layout
// data.ground_truth reads (sharding/ground_truth_file.h).
#include "launcher/data_export.h"

#include <spdlog/spdlog.h>

#include "common/byte_size.h"
#include "common/exit_codes.h"
#include "config/config_error.h"
#include "config/grid.h"
#include "config/job_settings.h"
#include "config/sweep_file.h"
#include "sharding/ground_truth_file.h"

namespace sweep::launcher {

int export_synthetic_data(const ExportOptions& options) {
  sharding::DataConfig data;
  double features = 0;  // the synthetic data set's true features
  try {
    auto spec = load_sweep(options.file, options.overrides);
    if (spec.base["data.source"] != "synthetic") {
      throw ConfigError(options.file.filename().string() + ": data.source = " + spec.base["data.source"].dump() +
                        ": `sweep data export` writes the synthetic data set only");
    }
    data = to_data_config(spec.base);
    features = synthetic_feature_count(spec.base);
  } catch (const ConfigError& e) {
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  int64_t n = options.tokens.value_or(data.eval_tokens);
  if (n < 1) {
    spdlog::error("--tokens {}: must be at least 1", n);
    return kExitInvalidInput;
  }
  if (options.out.extension() != ".safetensors") {
    spdlog::error("--out {}: the export is a .safetensors file; name it *.safetensors", options.out.string());
    return kExitInvalidInput;
  }
  if (std::filesystem::is_directory(options.out)) {
    spdlog::error("--out {}: is a directory; give the path of the .safetensors file to write", options.out.string());
    return kExitInvalidInput;
  }
  // The rows (float32) and their ground truth, held while they are written: refused up front when
  // the machine's available memory or the file system cannot take them.
  const double bytes = static_cast<double>(n) * 4.0 * (static_cast<double>(data.synthetic.d_in) + 8.0) +
                       4.0 * features * static_cast<double>(data.synthetic.d_in);
  const auto parent = std::filesystem::absolute(options.out).parent_path();
  std::error_code no_space_info;
  const double free_bytes = static_cast<double>(std::filesystem::space(parent, no_space_info).available);
  if (bytes > 0.9 * available_memory_bytes() || (!no_space_info && bytes > free_bytes)) {
    spdlog::error("--tokens {}: the export takes about {} (rows x (data.d_in + their ground truth), and the features' "
                  "directions), more than the {} of memory available now or the {} free under {}; lower --tokens",
                  n, byte_size(bytes), byte_size(available_memory_bytes()), byte_size(free_bytes), parent.string());
    return kExitInvalidInput;
  }
  auto cfg = data.synthetic;
  cfg.seed = data.seed;
  sharding::SyntheticSource source(cfg);
  sharding::ExportSummary summary;
  try {
    summary = sharding::write_synthetic_with_ground_truth(options.out, source, n);
  } catch (const std::exception& e) {  // a missing directory, a full disk: nothing half-written is left
    std::error_code ignored;
    std::filesystem::remove(options.out.string() + ".tmp", ignored);
    spdlog::error("--out {}: the export could not be written: {}", options.out.string(), e.what());
    return kExitOutputFailed;
  }
  const double d_in = static_cast<double>(source.d_in()), rows = static_cast<double>(n);
  spdlog::info("wrote {} rows of d_in {} with {} ground-truth features ({:.1f} x d_in) to {}", n, source.d_in(),
               source.n_features(), static_cast<double>(source.n_features()) / d_in, options.out.string());
  spdlog::info("true features per row {:.2f}; rows without a feature {:.2f}%; all-zero rows {:.2f}%; mean max |cos| "
               "between feature directions {:.3f}",
               summary.mean_l0, 100.0 * static_cast<double>(summary.featureless_rows) / rows,
               100.0 * static_cast<double>(summary.zero_rows) / rows, summary.mean_max_overlap);
  return 0;
}

}  // namespace sweep::launcher
