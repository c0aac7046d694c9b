// Resolution of the Slurm settings in order of precedence (default < [slurm] < command line) and
// the checks across keys: the ranks a job starts must suit train.ranks_per_job, and the
// checkpoint signal must come before the time limit.
#include "slurm/settings.h"

#include <map>

#include "config/config_error.h"
#include "config/config_schema.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

struct Resolved {
  json value;
  std::string where;  // "file:line", "--flag value", or "file (default of key)"
};

std::map<std::string, Resolved> resolve(const SweepSpec& spec, const std::vector<SlurmFlag>& command_line) {
  std::map<std::string, Resolved> out;
  for (const auto& key_spec : config_schema()) {
    if (key_spec.key.rfind("slurm.", 0) != 0) continue;
    out[key_spec.key] = {key_spec.default_value, spec.file.filename().string() + " (default of " + key_spec.key + ")"};
  }
  for (const auto& [key, value] : spec.slurm.items()) out[key] = {value, spec.where.at(key)};
  for (const auto& flag : command_line) {
    const KeySpec* key_spec = find_key(flag.key);
    std::string where = flag.flag + " " + (flag.value.is_string() ? flag.value.get<std::string>() : flag.value.dump());
    if (auto problem = key_spec->check(flag.value); !problem.empty()) {
      throw ConfigError(where + ": " + flag.key + " = " + flag.value.dump() + ": " + problem);
    }
    out[flag.key] = {flag.value, flag.flag};
  }
  return out;
}

}  // namespace

SlurmSettings resolve_slurm_settings(const SweepSpec& spec, const std::vector<SlurmFlag>& command_line) {
  auto values = resolve(spec, command_line);
  auto get = [&](const std::string& leaf) { return values.at("slurm." + leaf).value; };
  auto fail = [&](const std::string& leaf, const std::string& message) {
    const auto& r = values.at("slurm." + leaf);
    throw ConfigError(r.where + ": slurm." + leaf + " = " + r.value.dump() + ": " + message);
  };
  SlurmSettings s;
  s.nodes = get("nodes");
  s.ntasks_per_node = get("ntasks_per_node");
  s.gpus_per_task = get("gpus_per_task");
  s.time = get("time");
  s.partition = get("partition");
  s.account = get("account");
  s.array = get("array");
  s.max_requeues = get("max_requeues");
  s.signal_lead = get("signal_lead");
  s.sbatch_args = get("sbatch_args").get<std::vector<std::string>>();

  int64_t ranks = s.nodes * s.ntasks_per_node, group = spec.base["train.ranks_per_job"];
  if (ranks % group != 0) {
    fail("ntasks_per_node", std::to_string(s.nodes) + " node(s) x " + std::to_string(s.ntasks_per_node) + " = " +
                                std::to_string(ranks) + " ranks, which train.ranks_per_job = " + std::to_string(group) +
                                " does not divide; start a multiple of " + std::to_string(group) + " ranks");
  }
  if (!s.time.empty() && s.signal_lead >= *slurm_time_seconds(s.time)) {
    fail("signal_lead", "not shorter than slurm.time = \"" + s.time +
                            "\": the sweep would be told to checkpoint before it starts; lower it or raise the time");
  }
  return s;
}

}  // namespace sweep::launcher
