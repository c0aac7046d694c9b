// Everything one grid point needs to run, already resolved and validated by the launcher:
// typed settings for data, SAE, losses, absorption and training, plus its id and swept params.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "sae/probe_absorption.h"
#include "sae/sae_config.h"
#include "sae/saelens_export.h"
#include "sharding/dataset.h"

namespace sweep::worker {

struct TrainConfig {
  int64_t steps = 4000;
  int64_t batch_size = 1024;  // global: all ranks of the job together
  double lr = 3e-4;
  int64_t warmup_steps = 200;
  int64_t log_every = 50;
  int64_t eval_batch_size = 4096;
  double divergence_factor = 100.0;  // the loss may grow to this many times its first step's
  std::string device = "auto";  // auto | cpu | cuda
  int gpu_index = 0;             // which GPU of the machine (set per rank by the launcher)
  int64_t checkpoint_every = 0;       // steps between checkpoints; 0: every checkpoint_seconds
  double checkpoint_seconds = 300.0;  // of training, when checkpoint_every is 0
};

struct JobConfig {
  std::string id;
  nlohmann::json params;    // the swept settings of this grid point (dotted keys)
  nlohmann::json resolved;  // the full resolved configuration (dotted keys)
  uint64_t seed = 42;       // parameter initialisation
  sharding::DataConfig data;
  sae::ActivationOrigin origin;
  sae::SaeConfig sae;
  sae::LossConfig loss;
  sae::AbsorptionConfig absorption;
  sae::ProbeAbsorptionConfig probe;    // the probe-based absorption metric, with data.labels
  std::filesystem::path probe_file;   // its probes (worker/probe_file.h); empty without data.labels
  TrainConfig train;
};

}  // namespace sweep::worker
