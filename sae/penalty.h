// The interface of a training penalty (a term added to the SAE's loss) and the table of penalties
// by name. A penalty is one file under sae/penalties/ plus its line in sae/penalties/registry.cpp.
//
// Its part in a training step (worker/trainer.cpp), in order:
//   1. refresh_due(), read with the step's one device read; when set, refresh() before the step
//      is computed again, the whole group agreeing;
//   2. local_statistics(): its section of the step's first all-reduce (statistics_numel() values);
//   3. loss(): its weighted loss from the reduced section, updating whatever it keeps across steps,
//      and its activity, a few device scalars that travel in the step's second all-reduce.
// What it keeps across steps is in tensors(): checkpoints save them and a resume restores them; a
// step computed again restores a clone() taken before it. A penalty adds no all-reduce of its own.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/setting.h"
#include "sae/sae_config.h"

namespace sweep::sae {

class Sae;

// What a penalty is built from: the job's settings and where its tensors live.
struct PenaltyContext {
  const nlohmann::json& settings;     // every setting of the job by dotted key (a penalty reads its own)
  const AbsorptionConfig& absorption;  // absorption.*, typed (also read by the metrics)
  int64_t d_sae = 0;
  uint64_t seed = 0;  // the job's seed: a penalty's random draws follow it and the step
  torch::TensorOptions options;
};

// The firing a penalty's statistics need from the step's forward.
enum class FiringNeeded { None, Bits, Rows };

// The figures a penalty's local_statistics() may read: the shard's firing, as the 0/1 rows
// [B, d_sae] and as packed bits (sae/candidate_pairs.h), each defined when some penalty asked for it.
struct ShardFiring {
  torch::Tensor rows, bits;
};

struct PenaltyLoss {
  torch::Tensor loss;      // weighted, with gradient (a 0-d tensor)
  torch::Tensor activity;  // [activity_names().size()], detached, on the device
};

class Penalty {
 public:
  virtual ~Penalty() = default;
  virtual std::unique_ptr<Penalty> clone() const = 0;

  // Statistics of the global batch, in the step's first all-reduce.
  virtual int64_t statistics_numel() const { return 0; }
  virtual FiringNeeded firing_needed() const { return FiringNeeded::None; }
  virtual torch::Tensor local_statistics(const ShardFiring&) const { return {}; }

  // A device flag: the penalty must refresh before the step (undefined: never).
  virtual torch::Tensor refresh_due(const torch::Tensor& /*W_dec*/) const { return {}; }
  // Refreshes (may read the device); returns a note worth a warning, or "".
  virtual std::string refresh(const torch::Tensor& /*W_dec*/) { return ""; }

  // `fired`: every latent's firing count over the global batch of `global_rows` rows; `section`:
  // this penalty's reduced statistics; `step`: the step being trained (from 0).
  virtual PenaltyLoss loss(const Sae& sae, const torch::Tensor& fired, const torch::Tensor& section,
                           int64_t global_rows, int64_t step) = 0;

  // Checkpoints: the state by tensor name; restore() after `updates` steps. Throws std::runtime_error.
  virtual std::vector<std::pair<std::string, torch::Tensor>> tensors() const { return {}; }
  virtual void restore(const std::map<std::string, torch::Tensor>& /*saved*/, int64_t /*updates*/) {}
  // What another rank needs to shape its state before the tensors are broadcast to it (undefined:
  // the shapes follow from the settings).
  virtual torch::Tensor shape_header() const { return {}; }
  virtual void reshape(const torch::Tensor& /*header*/, int64_t /*updates*/) {}
};

// One row of the penalty table.
struct PenaltyEntry {
  std::string name;
  // Its settings' section ("absorption" for absorption.*), and the setting and value that turn it
  // off: a job with every penalty off is a baseline, and a penalty's other settings are not part of
  // a job that has it off.
  std::string section;
  std::string switch_key;
  nlohmann::json off;
  // Its settings' rows in the sweep-file schema (key, type, default, check, help), declared here
  // once; a penalty the sweep file cannot set (a test's) leaves them empty.
  std::vector<Setting> settings;
  // The names of its activity values (the first: its unweighted loss), in the step's terms,
  // metrics.jsonl and the report's curves; 0 in jobs where the penalty is off.
  std::vector<std::string> activity;
  // The penalty for this job, or nullptr where its settings leave it off.
  std::function<std::unique_ptr<Penalty>(const PenaltyContext&)> make;
  // The bytes its state adds to a job's checkpoint at d_in, at most, without building it (null: none).
  std::function<double(const PenaltyContext&, int64_t d_in)> checkpoint_bytes = nullptr;
  // Checks across its settings for a job that has it on, on the typed settings (null: none).
  std::function<std::vector<SettingProblem>(const PenaltyContext&)> check = nullptr;
};

// Every penalty, in the order their losses are added and their activity laid out.
const std::vector<PenaltyEntry>& penalties();
// Adds a penalty to the table (tests; the built-in ones are listed in sae/penalties/registry.cpp).
// Throws std::invalid_argument for a name already there.
void register_penalty(PenaltyEntry entry);

// A job's penalties: one slot per table row, in the table's order, null where it is off.
using Penalties = std::vector<std::unique_ptr<Penalty>>;
Penalties make_penalties(const PenaltyContext& context);
Penalties clone_penalties(const Penalties& penalties);
// Every row's activity names, in order.
const std::vector<std::string>& penalty_activity_names();
// Whether the job's settings (dotted keys) leave `entry` off (a missing switch counts as off).
bool penalty_is_off(const PenaltyEntry& entry, const nlohmann::json& settings);
// The penalty whose section holds the setting `key` ("absorption.penalty"), or nullptr.
const PenaltyEntry* penalty_of_setting(const std::string& key);
// The bytes the job's penalties add to its checkpoints, at most.
double penalties_checkpoint_bytes(const PenaltyContext& context, int64_t d_in);

}  // namespace sweep::sae
