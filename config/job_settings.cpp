// The typed settings of sae/, sharding/ and worker/ filled from the validated key table by the
// schema's rows themselves: each row that fills a struct member says which (common/setting.h:
// field), so there is no second table of keys and members here.
#include "config/job_settings.h"

#include <stdexcept>
#include <typeindex>

#include "config/config_schema.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

// The structs the rows fill, and where in a job's configuration each lies.
const std::type_index kFilledStructs[] = {
    typeid(worker::JobConfig),  typeid(worker::TrainConfig),   typeid(sharding::DataConfig),
    typeid(sharding::SyntheticConfig), typeid(sae::ActivationOrigin), typeid(sae::SaeConfig),
    typeid(sae::LossConfig),    typeid(sae::AbsorptionConfig), typeid(sae::ProbeAbsorptionConfig),
    typeid(RunSettings)};

}  // namespace

const char* data_source_key(const json& c) { return c["data.source"] == "files" ? "data.paths" : "data.path"; }

sharding::DataConfig to_data_config(const json& c) {
  sharding::DataConfig data;
  fill_settings(config_schema(), c, data);
  fill_settings(config_schema(), c, data.synthetic);
  // Not a setting: the launcher estimates it and stores it in the plan's job configurations.
  if (c.contains(kNormalizeFactorKey)) data.normalize_factor = c[kNormalizeFactorKey].get<double>();
  // data.hook_name names a cache's activation column; left at its default, the cache has only one.
  if (const auto hook = c["data.hook_name"].get<std::string>(); hook != sae::ActivationOrigin{}.hook_name) data.column = hook;
  return data;
}

RunSettings to_run_settings(const json& c) {
  RunSettings run;
  fill_settings(config_schema(), c, run);
  return run;
}

worker::JobConfig to_job_config(const PlannedJob& job) {
  const json& c = job.resolved;
  const auto& rows = config_schema();
  worker::JobConfig cfg;
  fill_settings(rows, c, cfg);
  fill_settings(rows, c, cfg.origin);
  fill_settings(rows, c, cfg.sae);
  fill_settings(rows, c, cfg.loss);
  fill_settings(rows, c, cfg.absorption);
  fill_settings(rows, c, cfg.probe);
  fill_settings(rows, c, cfg.train);
  cfg.id = job.id;
  cfg.params = job.params;
  cfg.resolved = c;
  cfg.data = to_data_config(c);
  cfg.origin.dataset_path = cfg.data.source == sharding::DataConfig::Source::Files   ? c["data.paths"].dump()
                            : cfg.data.source == sharding::DataConfig::Source::Saelens ? cfg.data.path
                                                                                        : "synthetic";
  // d_in comes from the data: the synthetic setting here, the shards' width for files (set at open).
  cfg.sae.d_in = c["data.d_in"];
  // train.ranks_per_job is the launcher's business: it decides the group a job runs on.
  return cfg;
}

std::vector<std::string> bound_settings_left_unfilled() {
  std::vector<std::string> out;
  for (const auto& row : config_schema()) {
    if (row.target == std::type_index(typeid(void))) continue;
    if (std::find(std::begin(kFilledStructs), std::end(kFilledStructs), row.target) == std::end(kFilledStructs))
      out.push_back(row.key);
  }
  return out;
}

}  // namespace sweep::launcher
