// Runs one grid point on a group of ranks: open data, train, evaluate, write the job directory.
// A failure inside the job is caught and recorded; it never takes the sweep down.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "worker/communicator.h"
#include "worker/job_config.h"

namespace sweep::worker {

struct JobOutcome {
  bool ok = false;
  nlohmann::json result;  // what result.json holds
};

// Chooses the torch device for train.device ("auto" picks CUDA when available).
torch::Device pick_device(const std::string& setting, int gpu_index);

JobOutcome run_job(const JobConfig& cfg, Communicator& comm, const std::filesystem::path& job_dir);

}  // namespace sweep::worker
