// Checkpoints of one job: the complete training state as safetensors plus a meta.json with the
// step, the loop's own progress and checksums of both files; written to a new directory then renamed.
#pragma once

#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "worker/job_config.h"
#include "worker/trainer.h"

namespace sweep::worker {

// <job_dir>/checkpoints/step-<8 digits>/{state.safetensors, meta.json}; the newest two are kept.
struct Checkpoint {
  int64_t step = 0;
  nlohmann::json progress;  // what the training loop saved besides the tensors
  std::filesystem::path dir;
};

// Writes the state after `state.step` steps. Throws std::runtime_error naming the file on failure
// (the previous checkpoints are untouched then).
Checkpoint save_checkpoint(const std::filesystem::path& job_dir, TrainingState& state, const nlohmann::json& progress);

// Restores the newest checkpoint that passes validation (size, checksum, every tensor present
// with the right shape and dtype) into `state`; a bad one is skipped with a warning naming it.
// Returns nullopt (state untouched) when there is none.
std::optional<Checkpoint> restore_newest_checkpoint(const std::filesystem::path& job_dir, TrainingState& state);

// Every tensor of the training state, by name, in a fixed order (creates empty Adam moments for
// parameters that have not been stepped yet, so the set of names never depends on the step).
std::vector<std::pair<std::string, torch::Tensor>> training_state_tensors(TrainingState& state);

// Sets Adam's per-parameter step counts from `steps` ([parameters] int64), or reads them.
void set_adam_steps(TrainingState& state, const torch::Tensor& steps);
torch::Tensor adam_steps(TrainingState& state);

// Bytes one checkpoint of this job takes on disk (for the free-space check before a sweep).
double checkpoint_bytes(const JobConfig& cfg, int64_t d_in);

// Removes a job's checkpoints (once its results are written they are no longer needed).
void remove_checkpoints(const std::filesystem::path& job_dir);

}  // namespace sweep::worker
