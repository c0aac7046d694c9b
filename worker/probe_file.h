// The probes of the probe-based absorption metric on disk: <out>/probes/<key>.safetensors holds
// each concept's probe on the raw activations ("weight" [n_concepts, d_in], "bias" [n_concepts])
// with its concepts' names and what it was trained on in the metadata. A sweep trains them once per
// data set and labels (launcher/probes.h); every job reads them.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "sae/linear_probe.h"
#include "sharding/dataset.h"

namespace sweep::worker {

struct ProbeFile {
  sae::LinearProbes probes;
  std::vector<std::string> names;
  std::map<std::string, std::string> metadata;  // "names", "trained_on" (JSON), "train_rows", ...
};

// Trains the probes on up to `train_rows` labelled training rows of `data` (the first ones of its
// fixed training order, never a held-out row). A concept without a positive among them keeps a
// zero probe, which never says it is on: it is then scored on no row.
ProbeFile train_probes(const sharding::Dataset& data, int64_t train_rows);

void write_probe_file(const std::filesystem::path& file, const ProbeFile& probes);
// Throws std::runtime_error naming the file when it is missing or not a probe file.
ProbeFile read_probe_file(const std::filesystem::path& file);

}  // namespace sweep::worker
