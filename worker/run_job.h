// Runs one grid point on a group of ranks: open data, train, evaluate, write the job directory.
// A failure inside the job is caught and recorded; it never takes the sweep down.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "worker/communicator.h"
#include "worker/job_config.h"
#include "worker/job_control.h"

namespace sweep::worker {

// Chooses the torch device for train.device ("auto" picks CUDA when available).
torch::Device pick_device(const std::string& setting, int gpu_index);

// Continues from the job's newest valid checkpoint when it has one. The group leader writes
// result.json for a done or failed job; a preempted job leaves its checkpoint instead.
JobOutcome run_job(const JobConfig& cfg, Communicator& comm, const std::filesystem::path& job_dir,
                   const JobControl& control = {});

}  // namespace sweep::worker
