// Opens each distinct data source of the jobs once (files and caches: every shard validated, labels and
// ground truth checked against them), so a bad shard stops the sweep before any training.
#include "launcher/data_check.h"

#include "config/config_error.h"
#include "config/job_settings.h"
#include "sharding/data_error.h"
#include "sharding/dataset.h"

namespace sweep::launcher {

std::map<std::string, int64_t> check_data(const SweepSpec& spec, const std::vector<PlannedJob>& jobs) {
  std::map<std::string, int64_t> width_of_source, train_rows_of_source, width;
  for (const auto& job : jobs) {
    const auto& c = job.resolved;
    if (c["data.source"] == "synthetic") {
      width[job.id] = c["data.d_in"];
      continue;
    }
    auto key = c["data.paths"].dump() + c["data.path"].dump() + c["data.hook_name"].dump() + c["data.tensor"].dump() +
               c["data.eval_tokens"].dump() + c["data.ground_truth"].dump() + c["data.labels"].dump();
    const char* source_key = data_source_key(c);
    auto where = spec.where.count(source_key) ? spec.where.at(source_key) : spec.file.filename().string();
    const std::string named = std::string(source_key) + " = " + c[source_key].dump();
    if (!width_of_source.count(key)) {
      try {
        auto data = sharding::open_dataset(to_data_config(c));
        width_of_source[key] = data->d_in();
        train_rows_of_source[key] = data->train_size();
      } catch (const sharding::DataError& e) {
        throw ConfigError(where + ": " + named + ": " + e.what());
      }
    }
    width[job.id] = width_of_source[key];
    const int64_t batch = c["train.batch_size"], train_rows = train_rows_of_source[key];
    if (train_rows < batch) {  // else every batch would repeat the same few rows
      throw ConfigError(where + ": " + named + ": after the " + c["data.eval_tokens"].dump() +
                        " held-out rows (data.eval_tokens) only " + std::to_string(train_rows) +
                        " rows are left for training, fewer than one batch (train.batch_size = " + std::to_string(batch) +
                        ")\nHINT: add data, lower data.eval_tokens or lower train.batch_size");
    }
  }
  return width;
}

}  // namespace sweep::launcher
