// Export checksums: the three SAELens files, each its size and sampled hash.
#include "common/export_checksums.h"

#include "common/file_sample.h"

namespace sweep {
namespace {

const char* const kExportFiles[] = {"sae/cfg.json", "sae/sae_weights.safetensors", "sae/sparsity.safetensors"};

}  // namespace

nlohmann::json export_checksums(const std::filesystem::path& job_dir) {
  nlohmann::json out = nlohmann::json::object();
  for (const char* file : kExportFiles) {
    const auto sample = sample_file(job_dir / file);
    out[file] = {{"bytes", sample.bytes}, {"hash", sample.hash}};
  }
  return out;
}

std::optional<std::string> export_damage(const std::filesystem::path& job_dir, const nlohmann::json& recorded) {
  for (const auto& [file, want] : recorded.items()) {
    const auto path = job_dir / file;
    if (!std::filesystem::is_regular_file(path)) return "the exported " + path.string() + " is missing";
    const auto sample = sample_file(path);
    if (sample.bytes != want.value("bytes", uint64_t{0})) {
      return "the exported " + path.string() + " holds " + std::to_string(sample.bytes) + " bytes, not the " +
             want.value("bytes", nlohmann::json()).dump() + " written";
    }
    if (sample.hash != want.value("hash", std::string())) return "the exported " + path.string() + " is damaged (its checksum differs)";
  }
  return std::nullopt;
}

}  // namespace sweep
