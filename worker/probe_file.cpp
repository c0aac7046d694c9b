// Gathers labelled training rows, trains the probes, and reads and writes their file.
#include "worker/probe_file.h"

#include <nlohmann/json.hpp>

#include "sharding/safetensors.h"

namespace sweep::worker {

ProbeFile train_probes(const sharding::Dataset& data, int64_t train_rows) {
  // Labelled rows are gathered chunk by chunk from the training order until there are enough.
  const int64_t chunk = 16384, available = data.train_size();
  std::vector<torch::Tensor> xs, ons;
  int64_t gathered = 0;
  for (int64_t first = 0; first < available && gathered < train_rows; first += chunk) {
    auto rows = data.train_rows(first, std::min(chunk, available - first));
    auto keep = rows.labels.labelled.nonzero().squeeze(1);
    keep = keep.narrow(0, 0, std::min(keep.size(0), train_rows - gathered));
    xs.push_back(rows.activations.index_select(0, keep));
    ons.push_back(rows.labels.on.index_select(0, keep));
    gathered += keep.size(0);
  }
  ProbeFile out;
  out.names = data.concept_names();
  const auto x = torch::cat(xs), on = torch::cat(ons);
  out.probes = sae::train_linear_probes(x, on);
  auto positives = on.sum(0).to(torch::kLong).contiguous();
  out.metadata = {{"format", "sweep probes"},
                  {"train_rows", std::to_string(gathered)},
                  {"train_positives", nlohmann::json(std::vector<int64_t>(positives.data_ptr<int64_t>(),
                                                                          positives.data_ptr<int64_t>() + positives.numel()))
                                          .dump()}};
  return out;
}

void write_probe_file(const std::filesystem::path& file, const ProbeFile& probes) {
  std::filesystem::create_directories(file.parent_path());
  auto metadata = probes.metadata;
  metadata["names"] = nlohmann::json(probes.names).dump();
  sharding::write_safetensors(file, {{"weight", probes.probes.weight}, {"bias", probes.probes.bias}}, metadata);
}

ProbeFile read_probe_file(const std::filesystem::path& file) {
  ProbeFile out;
  try {
    auto tensors = sharding::read_safetensors(file);
    out.metadata = sharding::read_safetensors_header(file).metadata;
    out.probes = {tensors.at("weight").to(torch::kFloat), tensors.at("bias").to(torch::kFloat)};
    out.names = nlohmann::json::parse(out.metadata.at("names")).get<std::vector<std::string>>();
  } catch (const std::exception& e) {
    throw std::runtime_error(file.string() + ": not a probe file written by sweep (" + e.what() +
                             "); remove it and re-run the sweep to train the probes again");
  }
  if (out.probes.weight.dim() != 2 || out.probes.bias.dim() != 1 ||
      out.probes.weight.size(0) != out.probes.bias.size(0) ||
      out.probes.weight.size(0) != static_cast<int64_t>(out.names.size())) {
    throw std::runtime_error(file.string() + ": the probes' shapes do not match their names; remove the file and re-run "
                                             "the sweep to train the probes again");
  }
  return out;
}

}  // namespace sweep::worker
